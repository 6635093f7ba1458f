"""Finds the ASGI app: an import string, the ``sys.path`` entry it needs, and where the choice came from.

Order: APP_MODULE > MODULE_NAME / VARIABLE_NAME > ``[tool.fastlaunch] app`` > automatic (the first of
``AUTO_FILES``; attribute ``app``, then ``api``, then the first ASGI application).

The master never imports the app (it would carry the app's memory into every fork and cost startup);
modules and attributes are checked statically here and for real by the first worker.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from fastlaunch.core.exceptions import AppDiscoveryError
from fastlaunch.core.settings import Settings
from fastlaunch.worker.importer import AUTO_ATTRS

AUTO_FILES = ("main.py", "app/main.py", "app.py", "api.py", "app/app.py", "app/api.py")
# Calls that build an ASGI application, recognised statically for "the first ASGI application".
ASGI_FACTORIES = frozenset({"FastAPI", "Starlette", "Quart", "Litestar", "Router"})


@dataclass(frozen=True)
class AppTarget:
    module: str
    attr: str | None  # None: the first ASGI application, picked when the module is imported
    path: Path  # the sys.path entry the module is importable from
    file: Path | None
    source: str

    @property
    def import_string(self) -> str:
        return f"{self.module}:{self.attr}" if self.attr else self.module


def module_for_file(file: Path) -> tuple[str, Path]:
    """Module name and sys.path entry for a file, walking up through packages (dirs with __init__.py)."""
    file = file.resolve()
    parts = [] if file.name == "__init__.py" else [file.stem]
    directory = file.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), directory


def find_module_file(module: str, search: list[Path]) -> tuple[Path, Path] | None:
    """The module's file and the search entry it was found under, without importing anything."""
    relative = Path(*module.split("."))
    for entry in search:
        for candidate in (entry / relative.with_suffix(".py"), entry / relative / "__init__.py"):
            if candidate.is_file():
                return candidate, entry
    return None


def _top_level(file: Path) -> tuple[list[str], str | None, bool] | None:
    """Names bound at module level, the first one assigned an ASGI app call, and whether names may come
    from elsewhere (star import, module __getattr__). None when the file cannot be parsed: the worker's
    import will then show the user's own SyntaxError."""
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError, OSError):
        return None
    names: list[str] = []
    first_asgi: str | None = None
    open_ended = False
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
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
            open_ended |= node.name == "__getattr__"
        elif isinstance(node, ast.If | ast.Try | ast.With):
            open_ended = True  # conditional definitions: leave the final word to the import
        for target in targets:
            if isinstance(target, ast.Name):
                names.append(target.id)
                if first_asgi is None and isinstance(value, ast.Call):
                    func = value.func
                    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    if called in ASGI_FACTORIES:
                        first_asgi = target.id
    return names, first_asgi, open_ended


def _pick_attr(file: Path | None) -> str | None:
    info = _top_level(file) if file else None
    if info is None:
        return None
    names, first_asgi, _ = info
    return next((a for a in AUTO_ATTRS if a in names), first_asgi)


def _check_attr(target: AppTarget, fix: str) -> None:
    if target.attr is None or target.file is None:
        return
    info = _top_level(target.file)
    if info is None:
        return
    names, first_asgi, open_ended = info
    if target.attr.split(".")[0] in names or open_ended:
        return
    found = next((a for a in AUTO_ATTRS if a in names), first_asgi)
    suggestion = f" It defines '{found}': {fix.format(module=target.module, attr=found)}." if found else ""
    raise AppDiscoveryError(
        f"Module '{target.module}' ({target.file}) has no attribute '{target.attr}' "
        f"(from {target.source}).{suggestion}",
        hint="Point fastlaunch at the variable that holds your FastAPI()/Starlette() instance.",
    )


def discover(settings: Settings, project_dir: Path | None = None) -> AppTarget:
    root = (project_dir or settings.project_dir).resolve()
    search = [root, *(Path(p) for p in sys.path if p)]

    def explicit(module: str, attr: str | None, source: str, fix: str) -> AppTarget:
        if module.endswith(".py") or "/" in module:
            file = (root / module).resolve()
            if not file.is_file():
                raise AppDiscoveryError(f"App file '{module}' (from {source}) does not exist under {root}.")
            name, path = module_for_file(file)
            target = AppTarget(name, attr or _pick_attr(file), path, file, source)
        else:
            found = find_module_file(module, search)
            if found is None:
                raise AppDiscoveryError(
                    f"Could not find module '{module}' (from {source}) in {root} or on sys.path.",
                    hint="Check the spelling, run fastlaunch from the project directory, or use a path such "
                    "as app/main.py:app.",
                )
            file, path = found
            target = AppTarget(module, attr or _pick_attr(file), path, file, source)
        _check_attr(target, fix)
        return target

    app_source = settings.source("app")
    if settings.app and app_source.kind in ("cli", "env"):
        module, _, attr = settings.app.partition(":")
        return explicit(module, attr or None, app_source.describe(), "use --app/APP_MODULE={module}:{attr}")
    if settings.module_name or settings.variable_name:
        where = " and ".join(
            settings.source(n).describe() for n in ("module_name", "variable_name") if settings.is_set(n)
        )
        source = f"MODULE_NAME/VARIABLE_NAME, {where}"
        if settings.module_name:
            return explicit(settings.module_name, settings.variable_name, source, "set VARIABLE_NAME={attr}")
        auto = _automatic(root)
        return explicit(auto.module, settings.variable_name, source, "set VARIABLE_NAME={attr}")
    if settings.app:
        module, _, attr = settings.app.partition(":")
        return explicit(module, attr or None, app_source.describe(), 'set app = "{module}:{attr}"')
    return _automatic(root)


def _automatic(root: Path) -> AppTarget:
    for relative in AUTO_FILES:
        file = root / relative
        if file.is_file():
            module, path = module_for_file(file)
            return AppTarget(module, _pick_attr(file), path, file, f"automatic: found {relative}")
    raise AppDiscoveryError(
        f"No app found in {root}: none of {', '.join(AUTO_FILES)} exists.",
        hint="Run fastlaunch from your project directory, or name the app: APP_MODULE=package.module:app "
        '(or --app, or app = "..." under [tool.fastlaunch] in pyproject.toml).',
    )
