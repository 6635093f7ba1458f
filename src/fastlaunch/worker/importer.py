"""Imports the app inside a worker. Runs in every worker: no Typer, no Rich, nothing heavy."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from fastlaunch.core.exceptions import ExitCode

AUTO_ATTRS = ("app", "api")
FACTORY_CALL = "()"  # main:create_app(): the factory form, as Gunicorn accepts it


def factory_form(attr: str | None) -> tuple[str | None, bool]:
    """The attribute without a trailing ``()``, and whether it had one (the attribute is a factory to call)."""
    if attr and attr.endswith(FACTORY_CALL):
        return attr[: -len(FACTORY_CALL)], True
    return attr, False


class AppNotFound(Exception):
    """The module or attribute does not exist (as opposed to the app raising while it is imported)."""


def is_asgi_app(obj: object) -> bool:
    if inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj):
        return False
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else getattr(obj, "__call__", None)  # noqa: B004
    try:
        params = list(inspect.signature(call).parameters.values()) if call else []
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


def is_asgi2_class(obj: object) -> bool:
    """An ASGI2 application: a class called with the scope, whose instances are called with receive, send."""
    return inspect.isclass(obj) and any("__call__" in vars(k) for k in obj.__mro__ if k is not object)


def is_factory(obj: object) -> bool:
    """A plain function callable without arguments that is not an ASGI app: Uvicorn calls such an object
    for its app; serving it as the app would fail every request with a TypeError."""
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)) or inspect.iscoroutinefunction(obj):
        return False
    try:
        inspect.signature(obj).bind()
    except (TypeError, ValueError):
        return False
    return True


def import_app(module: str, attr: str | None, path: str, *, factory: bool = False) -> Any:
    if path not in sys.path:
        sys.path.insert(0, path)
    attr, called = factory_form(attr)
    factory = factory or called
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only "the app's module is missing" is ours to explain; a missing dependency of the app is the
        # app's own error and keeps its traceback.
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise AppNotFound(f"Could not import module '{module}' (looked in {path}).") from None
        raise
    if attr:
        obj: Any = mod
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise AppNotFound(f"Module '{module}' has no attribute '{attr}'.")
            obj = getattr(obj, part)
        if factory or is_factory(obj):
            return _call_factory(obj, f"{module}:{attr}")
        return obj
    for name in AUTO_ATTRS:
        value = getattr(mod, name, None)
        if is_asgi_app(value) or is_asgi2_class(value):
            return value
    for name, value in vars(mod).items():
        if not name.startswith("_") and is_asgi_app(value):
            return value
    factories = [name for name, value in vars(mod).items() if not name.startswith("_") and is_factory(value)]
    hint = (
        f" Its function {factories[0]}() may be an app factory: APP_MODULE='{module}:{factories[0]}()'."
        if factories
        else ""
    )
    raise AppNotFound(f"Module '{module}' defines no ASGI application; set APP_MODULE={module}:<variable>.{hint}")


def _call_factory(factory: Any, name: str) -> Any:
    if not callable(factory):
        raise AppNotFound(f"{name} is not callable, so it cannot be an app factory; drop the ().")
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise AppNotFound(f"The app factory {name}() needs arguments; fastlaunch calls it with none.") from None
    except ValueError:
        pass  # no signature to check (a builtin): just call it
    app = factory()
    if app is None or not callable(app):
        raise AppNotFound(f"The app factory {name}() returned {type(app).__name__}, not an ASGI application.")
    return app


def dev_factory() -> Any:
    """uvicorn --factory target for ``fastlaunch dev``: the reloader's child imports the app afresh."""
    module, _, attr = os.environ["FASTLAUNCH_APP"].partition(":")
    try:
        return import_app(module, attr or None, os.environ["FASTLAUNCH_APP_PATH"])
    except AppNotFound as exc:
        print(f"fastlaunch dev: {exc}", file=sys.stderr)  # the message alone, not Uvicorn's traceback
        raise SystemExit(ExitCode.APP_NOT_FOUND) from None
