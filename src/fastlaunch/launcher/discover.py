"""Finds the ASGI app: an import string, the ``sys.path`` entry it needs, and where the choice came from.

Order: APP_MODULE > MODULE_NAME / VARIABLE_NAME > ``[tool.fastlaunch] app`` > ``[tool.fastapi] entrypoint``
(fastapi-cli's setting) > automatic (the first of ``AUTO_FILES``, then a src layout, then ``src`` as a package and
flat packages at the root that define an app; attribute ``app``, then ``api``, then the first ASGI application).
``fastlaunch run`` and ``fastlaunch init`` both find the app here.

The master never imports the app (it would carry the app's memory into every fork and cost startup);
modules and attributes are checked statically here and for real by the first worker. The app's own file is
parsed here too, so a syntax error or a top-level import of a module that is not installed is reported
before anything listens.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from fastlaunch.core.exceptions import AppDiscoveryError, AppLoadError
from fastlaunch.core.pyproject import read_pyproject
from fastlaunch.core.settings import Settings
from fastlaunch.worker.importer import AUTO_ATTRS, FACTORY_CALL, factory_form

AUTO_FILES = ("main.py", "app/main.py", "app.py", "api.py", "app/app.py", "app/api.py", "app/__init__.py")
# A src layout: src/<package>/<one of these>, packages in name order.
SRC_FILES = ("main.py", "app.py", "api.py", "__init__.py")
# Calls that build an ASGI application, recognised statically for "the first ASGI application".
ASGI_FACTORIES = frozenset({"FastAPI", "Starlette", "Quart", "Litestar", "Router"})
# Directories at the root that hold no app: never taken as a flat package, nor named as candidates.
NOT_APP_DIRS = frozenset(
    {"tests", "test", "migrations", "alembic", "scripts", "docs", "venv", ".venv", "node_modules", "build", "dist"}
)
# Names of functions taken for app factories when a module defines no application.
FACTORY_NAMES = ("create_app", "get_app", "make_app", "app_factory", "build_app")


@dataclass(frozen=True)
class AppTarget:
    module: str
    attr: str | None  # None: the first ASGI application, picked when the module is imported
    path: Path  # the sys.path entry the module is importable from
    file: Path | None
    source: str
    factory: bool = False  # attr names a function that returns the app

    @property
    def import_string(self) -> str:
        if not self.attr:
            return self.module
        return f"{self.module}:{self.attr}{FACTORY_CALL if self.factory else ''}"


@dataclass(frozen=True)
class _Module:
    """What the app's file binds at top level, read without importing it."""

    names: list[str]
    first_asgi: str | None
    open_ended: bool  # names may come from elsewhere (star import, module __getattr__, conditionals)
    factories: dict[str, bool]  # top-level functions: name -> callable without arguments
    builds_app: list[str]  # functions whose body calls FastAPI()/Starlette()/...
    imports: list[tuple[str, int]]  # absolute top-level imports: module, line
    edits_sys_path: bool  # sys.path.insert(...) and the like at top level


def module_for_file(file: Path, root: Path | None = None) -> tuple[str, Path]:
    """Module name and sys.path entry for a file, walking up through packages (dirs with __init__.py). With
    ``root``: a project rooted at a package directory (``backend/`` holding ``__init__.py`` and ``main.py``) is
    its own sys.path entry, unless the file imports the package by name or relatively."""
    file = file.resolve()
    parts = [] if file.name == "__init__.py" else [file.stem]
    directory = file.parent
    while (directory / "__init__.py").is_file():
        if root is not None and directory == root.resolve() and not _imports_own_package(file, root.resolve().name):
            break
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), directory


def _imports_own_package(file: Path, package: str) -> bool:
    try:
        tree = ast.parse(file.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return True  # keep Python's own reading; the syntax error is reported later with its line
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0] == package):
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == package for a in node.names):
            return True
    return False


def find_module_file(module: str, search: list[Path]) -> tuple[Path, Path] | None:
    """The module's file and the search entry it was found under, without importing anything."""
    relative = Path(*module.split("."))
    for entry in search:
        for candidate in (entry / relative.with_suffix(".py"), entry / relative / "__init__.py"):
            if candidate.is_file():
                return candidate, entry
    return None


def _called_name(value: ast.expr | None) -> str:
    if not isinstance(value, ast.Call):
        return ""
    func = value.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _no_required_args(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required_kw = [a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    return len(positional) <= len(args.defaults) and not required_kw


def _shown(file: Path) -> Path:
    """The file as the user would name it: relative to the working directory when under it."""
    try:
        return file.resolve().relative_to(Path.cwd())
    except ValueError:
        return file


def parse_module(file: Path, module: str) -> _Module:
    """The file's top level. A syntax error is the user's to fix before anything starts: reported with the
    file, line and the offending line, as Python prints it, without any frame of ours."""
    try:
        source = file.read_bytes()
        tree = ast.parse(source, filename=str(file))
    except SyntaxError as exc:
        where = f"{_shown(file)}:{exc.lineno}" if exc.lineno else str(_shown(file))
        shown = ""
        if exc.text:
            text = exc.text.rstrip("\n")
            stripped = text.lstrip()
            caret = " " * max(0, (exc.offset or 1) - 1 - (len(text) - len(stripped))) + "^"
            shown = f"\n    {stripped}\n    {caret}"
        raise AppLoadError(
            f"{where}: {exc.msg} (the app's module '{module}'){shown}",
            hint="Fix that line; nothing was started.",
        ) from None
    except (ValueError, OSError) as exc:
        raise AppLoadError(f"Cannot read the app's module {file}: {exc}.") from None
    names: list[str] = []
    first_asgi: str | None = None
    open_ended = False
    factories: dict[str, bool] = {}
    builds_app: list[str] = []
    imports: list[tuple[str, int]] = []
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                if alias.name == "*":
                    open_ended = True
                names.append(alias.asname or alias.name.split(".")[0])
            if isinstance(node, ast.Import):
                imports.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
            elif node.level == 0 and node.module:
                imports.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
            open_ended |= node.name == "__getattr__"
            if isinstance(node, ast.FunctionDef):
                factories[node.name] = _no_required_args(node)
                if any(_called_name(n) in ASGI_FACTORIES for n in ast.walk(node) if isinstance(n, ast.Call)):
                    builds_app.append(node.name)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            open_ended = True  # conditional definitions: leave the final word to the import
        for target in targets:
            if isinstance(target, ast.Name):
                names.append(target.id)
                if first_asgi is None and _called_name(value) in ASGI_FACTORIES:
                    first_asgi = target.id
    edits_sys_path = any(
        isinstance(n, ast.Attribute) and n.attr == "path" and isinstance(n.value, ast.Name) and n.value.id == "sys"
        for node in tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for n in ast.walk(node)
    )
    return _Module(names, first_asgi, open_ended, factories, builds_app, imports, edits_sys_path)


def _check_imports(info: _Module, file: Path, module: str, search: list[Path]) -> None:
    """A top-level ``import x`` of a module that is nowhere to be found fails every worker the same way:
    say so now, with the line. Only the first name of each import is looked up; nothing is imported."""
    if info.edits_sys_path:
        return  # the module extends sys.path itself: only its import can tell
    paths = [str(p) for p in search]
    for name, line in info.imports:
        if name in sys.builtin_module_names or name in sys.stdlib_module_names or name == "__future__":
            continue
        if importlib.machinery.PathFinder.find_spec(name, paths) is not None:
            continue
        try:
            if importlib.util.find_spec(name) is not None:  # meta path finders too (editable installs)
                continue
        except (ImportError, ValueError):
            continue  # something is there; the worker's import says what is wrong with it
        text = file.read_text(errors="replace").splitlines()[line - 1].strip()
        raise AppLoadError(
            f"{_shown(file)}:{line}: No module named '{name}' (imported by the app's module '{module}')\n    {text}",
            hint=f"Install it into the environment fastlaunch runs in ({sys.executable}), or fix the import; "
            "nothing was started.",
        )


def _app_candidates(info: _Module) -> str | None:
    return next((a for a in AUTO_ATTRS if a in info.names), info.first_asgi)


def _factory_in(info: _Module) -> str | None:
    """A function that looks like an app factory: named like one, or building the app in its body."""
    callable_now = [n for n, ok in info.factories.items() if ok]
    return next((n for n in FACTORY_NAMES if n in callable_now), None) or next(
        (n for n in info.builds_app if info.factories.get(n)), None
    )


def _resolve(
    module: str, file: Path, path: Path, attr: str | None, source: str, fix: str, search: list[Path] | None
) -> AppTarget:
    attr, factory = factory_form(attr)
    info = parse_module(file, module)
    if search is not None:
        _check_imports(info, file, module, [path, *search])
    if attr is None:
        attr = _app_candidates(info)
        if attr is None and not info.open_ended:
            found = _factory_in(info)
            if found:
                raise AppDiscoveryError(
                    f"Module '{module}' ({file}, {source}) defines no ASGI application, only the app factory "
                    f"{found}().",
                    hint=f"Serve what it returns: APP_MODULE='{module}:{found}()' (or app = "
                    f'"{module}:{found}()" under [tool.fastlaunch]).',
                )
        return AppTarget(module, attr, path, file, source)
    top = attr.split(".")[0]
    if top not in info.names and not info.open_ended:
        found_attr = _app_candidates(info)
        suggestion = f" It defines '{found_attr}': {fix.format(module=module, attr=found_attr)}." if found_attr else ""
        raise AppDiscoveryError(
            f"Module '{module}' ({file}) has no attribute '{attr}' (from {source}).{suggestion}",
            hint="Point fastlaunch at the variable that holds your FastAPI()/Starlette() instance, or at the "
            "function that returns it with (): main:create_app().",
        )
    # A function named bare that takes no arguments is a factory (Uvicorn calls such a callable as well):
    # calling it with an ASGI request's arguments would fail every request.
    factory = factory or (attr in info.factories and info.factories[attr])
    return AppTarget(module, attr, path, file, source, factory)


def _entrypoint(root: Path) -> str | None:
    """fastapi-cli's ``[tool.fastapi] entrypoint``: a project set up for `fastapi run` is served as is."""
    tool = read_pyproject(root).get("tool")
    table = tool.get("fastapi") if isinstance(tool, dict) else None
    value = table.get("entrypoint") if isinstance(table, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def discover(settings: Settings, project_dir: Path | None = None, *, check_imports: bool = True) -> AppTarget:
    """The app to serve. ``check_imports``: also check that the app file's own imports resolve here (the
    launcher's load-error check); ``fastlaunch init`` reads projects whose dependencies need not be installed."""
    root = (project_dir or settings.project_dir).resolve()
    search = [root, *(Path(p) for p in sys.path if p)]
    checked = search if check_imports else None

    def explicit(module: str, attr: str | None, source: str, fix: str) -> AppTarget:
        if module.endswith(".py") or "/" in module or (root / module).is_dir():
            file = (root / module).resolve()
            if file.is_dir():  # a package directory, as `fastapi dev src/pkg` takes it
                if not (file / "__init__.py").is_file():
                    raise AppDiscoveryError(
                        f"App path '{module}' (from {source}) is a directory without __init__.py.",
                        hint=f"Name the file inside it, e.g. {module.rstrip('/')}/main.py:app.",
                    )
                file = file / "__init__.py"
            if not file.is_file():
                raise AppDiscoveryError(f"App file '{module}' (from {source}) does not exist under {root}.")
            name, path = module_for_file(file, root)
            return _resolve(name, file, path, attr, source, fix, checked)
        found = find_module_file(module, search)
        if found is None:
            raise AppDiscoveryError(
                f"Could not find module '{module}' (from {source}) in {root} or on sys.path.",
                hint="Check the spelling, run fastlaunch from the project directory, or use a path such "
                "as app/main.py:app.",
            )
        file, path = found
        return _resolve(module, file, path, attr, source, fix, checked)

    app_source = settings.source("app")
    if settings.app and app_source.kind in ("cli", "env", "dotenv"):
        module, _, attr = settings.app.partition(":")
        return explicit(module, attr or None, app_source.describe(), "use --app/APP_MODULE={module}:{attr}")
    if settings.module_name or settings.variable_name:
        where = " and ".join(
            settings.source(n).describe() for n in ("module_name", "variable_name") if settings.is_set(n)
        )
        source = f"MODULE_NAME/VARIABLE_NAME, {where}"
        if settings.module_name:
            return explicit(settings.module_name, settings.variable_name, source, "set VARIABLE_NAME={attr}")
        auto = _automatic(root, checked)
        return explicit(auto.module, settings.variable_name, source, "set VARIABLE_NAME={attr}")
    if settings.app:
        module, _, attr = settings.app.partition(":")
        return explicit(module, attr or None, app_source.describe(), 'set app = "{module}:{attr}"')
    entrypoint = _entrypoint(root)
    if entrypoint:
        module, _, attr = entrypoint.partition(":")
        where = f"{root / 'pyproject.toml'} [tool.fastapi] entrypoint"
        return explicit(module, attr or None, where, 'set entrypoint = "{module}:{attr}"')
    return _automatic(root, checked)


def _automatic(root: Path, search: list[Path] | None) -> AppTarget:
    candidates = [(root / relative, f"automatic: found {relative}") for relative in AUTO_FILES]
    src = root / "src"
    if src.is_dir():
        for package in sorted(p for p in src.iterdir() if (p / "__init__.py").is_file()):
            for name in SRC_FILES:
                file = package / name
                candidates.append((file, f"automatic: found {file.relative_to(root)}"))
    # Only taken when they define an app: src as the package itself, then flat packages at the root.
    checked = [src / name for name in SRC_FILES if (src / "__init__.py").is_file()]
    checked += [p / name for p in _root_packages(root) for name in SRC_FILES]
    candidates += [(file, f"automatic: found {file.relative_to(root)}, which defines an app") for file in checked]
    for file, source in candidates:
        if not file.is_file():
            continue
        module, path = module_for_file(file, root)
        # A package's __init__.py is taken only when it defines an app: most are empty or re-export.
        if file.name == "__init__.py" or file in checked:
            info = parse_module(file, module)
            if _app_candidates(info) is None or (file in checked and info.first_asgi is None):
                continue
        return _resolve(module, file, path, None, source, "", search)
    seen = _candidates(root)
    named = f" Files that create an app: {', '.join(seen)}." if seen else ""
    example = seen[0].replace(".py", "").replace("/", ".") if seen else "package.module"
    raise AppDiscoveryError(
        f"No app found in {root}: none of {', '.join(AUTO_FILES)} exists, nor src/<package>/"
        f"{{{','.join(SRC_FILES)}}} or <package>/{{{','.join(SRC_FILES)}}} defining an app.{named}",
        hint=f"Run fastlaunch from your project directory, or name the app: APP_MODULE={example}:app "
        '(or --app, or app = "..." under [tool.fastlaunch] in pyproject.toml).',
    )


def _root_packages(root: Path) -> list[Path]:
    return sorted(
        p for p in root.iterdir() if p.name not in NOT_APP_DIRS and p.name != "src" and (p / "__init__.py").is_file()
    )


def _candidates(root: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` files (two levels down at most) whose top level creates an ASGI app, shallowest first."""
    found: list[str] = []
    for pattern in ("*.py", "*/*.py", "*/*/*.py"):
        for file in sorted(root.glob(pattern)):
            relative = file.relative_to(root)
            if NOT_APP_DIRS.intersection(relative.parts[:-1]) or any(p.startswith(".") for p in relative.parts):
                continue
            try:
                if parse_module(file, file.stem).first_asgi:
                    found.append(relative.as_posix())
            except AppLoadError:
                continue
            if len(found) >= limit:
                return found
    return found
