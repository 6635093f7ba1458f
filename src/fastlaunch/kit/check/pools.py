"""The database pools an app opens, read statically from its code (nothing is imported): every
``create_engine`` / ``create_async_engine`` / ``asyncpg.create_pool`` call, its ``poolclass``, ``pool_size`` and
``max_overflow`` (SQLAlchemy's defaults 5 and 10 when not given), and how many engines each call makes per
process (a call inside a function counts once per call of that function).

A value may be a literal, a module constant, a ``**options`` dict built in the same function, an environment
variable read with ``os.environ`` / ``os.getenv``, or a field of a settings class (pydantic ``BaseSettings``):
its default, unless the deployment's environment sets the variable it is read from."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastlaunch.kit.check.located import Loc
from fastlaunch.kit.sources import parsed

ENGINE_CALLS = {"create_engine": "SQLAlchemy", "create_async_engine": "SQLAlchemy", "create_pool": "asyncpg"}
SINGLE_CONNECTION_POOLS = ("StaticPool", "SingletonThreadPool", "AssertionPool")
DEFAULTS = {"pool_size": 5, "max_overflow": 10, "max_size": 10}


@dataclass(frozen=True)
class Sized:
    value: int | None  # None: not known statically
    text: str  # how it was found: "pool_size=settings.database_pool_size: DATABASE_POOL_SIZE unset, default 5"


@dataclass(frozen=True)
class Pool:
    loc: Loc
    call: str
    pool_class: str  # "QueuePool", "NullPool", ...
    sizes: tuple[tuple[str, Sized], ...]  # ("pool_size", ...), ("max_overflow", ...)
    copies: int  # engines this call makes in each worker
    copies_text: str

    def per_engine(self) -> int | None:
        """Connections one engine may hold at once; None when unbounded (max_overflow=-1)."""
        if self.pool_class in SINGLE_CONNECTION_POOLS:
            return 1
        values = [size.value or 0 for _, size in self.sizes]
        if any(v < 0 for v in values):
            return None
        return sum(values)


@dataclass(frozen=True)
class _Field:
    default: ast.expr | None
    env: str
    loc: Loc


class _Project:
    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root = root
        self.trees: dict[Path, ast.Module] = {}
        for file in files:
            if (tree := parsed(file)) is not None:
                self.trees[file] = tree
        self.fields = self._settings_fields()

    def shown(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix()

    def _settings_fields(self) -> dict[str, _Field]:
        """Fields of every class deriving from something named *Settings, by attribute name."""
        fields: dict[str, _Field] = {}
        for file, tree in self.trees.items():
            for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
                if not any(ast.unparse(b).endswith("Settings") for b in cls.bases):
                    continue
                prefix = _env_prefix(cls)
                for item in cls.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        default, env = item.value, (prefix + item.target.id).upper()
                        if isinstance(default, ast.Call) and ast.unparse(default.func).endswith("Field"):
                            keywords = {k.arg: k.value for k in default.keywords}
                            alias = keywords.get("validation_alias") or keywords.get("alias") or keywords.get("env")
                            if isinstance(alias, ast.Constant) and isinstance(alias.value, str):
                                env = alias.value.upper()
                            default = keywords.get("default", default.args[0] if default.args else None)
                        fields[item.target.id] = _Field(default, env, Loc(self.shown(file), item.lineno))
        return fields


def _env_prefix(cls: ast.ClassDef) -> str:
    for node in ast.walk(cls):
        if isinstance(node, ast.keyword) and node.arg == "env_prefix" and isinstance(node.value, ast.Constant):
            return str(node.value.value)
        if isinstance(node, ast.Assign) and any(ast.unparse(t) == "env_prefix" for t in node.targets):
            if isinstance(node.value, ast.Constant):
                return str(node.value.value)
    return ""


class _Resolver:
    """Integer values of expressions, under one deployment's environment."""

    def __init__(self, project: _Project, env: Mapping[str, str], module: ast.Module, scope: ast.AST) -> None:
        self.project, self.env, self.module, self.scope = project, env, module, scope

    def value(self, node: ast.expr) -> Sized:
        text = ast.unparse(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return Sized(node.value, text)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            inner = self.value(node.operand)
            return Sized(None if inner.value is None else -inner.value, text)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("int", "float") and node.args:
            return self.value(node.args[0])
        if env := self._env_read(node):
            name, default = env
            if name in self.env:
                return _parsed(self.env[name], f"{text}: {name}={self.env[name]}")
            found = self.value(default) if default is not None else Sized(None, "")
            return Sized(found.value, f"{text}: {name} unset, default {found.value}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _parsed(node.value, text)
        if isinstance(node, ast.Name):
            assigned = _assignment(self.scope, node.id) or _assignment(self.module, node.id)
            if assigned is not None:
                inner = self.value(assigned)
                return Sized(inner.value, f"{text} = {inner.text}")
        if isinstance(node, ast.Attribute) and (field := self.project.fields.get(node.attr)):
            if field.env in self.env:
                return _parsed(self.env[field.env], f"{text}: {field.env}={self.env[field.env]}")
            found = self.value(field.default) if field.default is not None else Sized(None, "")
            return Sized(found.value, f"{text}: {field.env} unset, default {found.value} ({field.loc})")
        return Sized(None, f"{text}: not readable statically")

    def _env_read(self, node: ast.expr) -> tuple[str, ast.expr | None] | None:
        """os.environ["X"], os.environ.get("X", d), os.getenv("X", d), config("X", default=d)."""
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            key = node.slice
            return (key.value, None) if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func.endswith(("environ.get", "getenv")) or func in ("config", "env", "env.int"):
                default = node.args[1] if len(node.args) > 1 else None
                default = next((k.value for k in node.keywords if k.arg == "default"), default)
                return str(node.args[0].value), default
        return None


def _parsed(raw: str, text: str) -> Sized:
    try:
        return Sized(int(raw), text)
    except ValueError:
        return Sized(None, f"{text}: not a whole number")


def _assignment(scope: ast.AST, name: str) -> ast.expr | None:
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def _options(scope: ast.AST, name: str) -> dict[str, ast.expr]:
    """Keys of a dict built in ``scope``: ``name = {...}`` / ``dict(...)`` and ``name["key"] = value``."""
    found: dict[str, ast.expr] = {}
    value = _assignment(scope, name)
    if isinstance(value, ast.Dict):
        pairs = zip(value.keys, value.values, strict=True)
        found |= {k.value: v for k, v in pairs if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    elif isinstance(value, ast.Call) and ast.unparse(value.func) == "dict":
        found |= {k.arg: k.value for k in value.keywords if k.arg}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and isinstance(target := node.targets[0], ast.Subscript):
            if ast.unparse(target.value) == name and isinstance(target.slice, ast.Constant):
                found[str(target.slice.value)] = node.value
    return found


def _parents(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _copies(project: _Project, function: str | None) -> tuple[int, str]:
    if function is None:
        return 1, "at import: one engine per worker"
    calls = [
        (file, n)
        for file, tree in project.trees.items()
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] == function and not _imports_alembic(tree)
    ]
    if len(calls) <= 1:
        return 1, f"made by {function}(), called once"
    where = ", ".join(f"{project.shown(f)}:{n.lineno}" for f, n in calls)
    return len(calls), f"made by {function}(), called {len(calls)} times ({where})"


def _imports_alembic(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.ImportFrom | ast.Import)
        and any((getattr(n, "module", None) or a.name).startswith("alembic") for a in n.names)
        for n in ast.walk(tree)
    )


def read_pools(root: Path, files: list[Path], env: Mapping[str, str]) -> list[Pool]:
    """The pools the app's workers open, under ``env`` (a migration script's engine is not one of them)."""
    project = _Project(root, files)
    # A function of the app's own named create_engine is a wrapper, counted through its calls, not an engine.
    own = {
        n.name
        for tree in project.trees.values()
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    pools: list[Pool] = []
    for file, tree in project.trees.items():
        if _imports_alembic(tree):
            continue
        parents = _parents(tree)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = ast.unparse(call.func).split(".")[-1]
            if name not in ENGINE_CALLS or (name == "create_pool" and "asyncpg" not in ast.unparse(call.func)):
                continue
            if isinstance(call.func, ast.Name) and name in own:
                continue
            scope: ast.AST = call
            while scope in parents and not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                scope = parents[scope]
            function = scope.name if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef) else None
            cached = isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                ast.unparse(d).split(".")[-1].split("(")[0] in ("cache", "lru_cache", "cached_property")
                for d in scope.decorator_list
            )
            if function is None:
                scope = tree
            keywords: dict[str, ast.expr] = {}
            for keyword in call.keywords:
                if keyword.arg is None and isinstance(keyword.value, ast.Name):
                    keywords |= _options(scope, keyword.value.id)
                elif keyword.arg:
                    keywords[keyword.arg] = keyword.value
            url = call.args[0] if call.args else keywords.get("url")
            if isinstance(url, ast.Constant) and str(url.value).startswith("sqlite"):
                continue
            resolver = _Resolver(project, env, tree, scope)
            pool_class = ast.unparse(keywords["poolclass"]).split(".")[-1] if "poolclass" in keywords else "QueuePool"
            names = ("max_size",) if ENGINE_CALLS[name] == "asyncpg" else ("pool_size", "max_overflow")
            sizes = []
            for key in names:
                if key in keywords:
                    sized = resolver.value(keywords[key])
                    sizes.append(
                        (
                            key,
                            sized
                            if sized.value is not None
                            else Sized(DEFAULTS[key], sized.text + f", taken as the default {DEFAULTS[key]}"),
                        )
                    )
                else:
                    sizes.append((key, Sized(DEFAULTS[key], f"default {DEFAULTS[key]}")))
            copies, copies_text = (1, f"made by {function}(), cached: once") if cached else _copies(project, function)
            pools.append(
                Pool(Loc(project.shown(file), call.lineno), name, pool_class, tuple(sizes), copies, copies_text)
            )
    return pools
