"""Imports the app inside a worker. Runs in every worker: no Typer, no Rich, nothing heavy."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

AUTO_ATTRS = ("app", "api")


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


def import_app(module: str, attr: str | None, path: str) -> Any:
    if path not in sys.path:
        sys.path.insert(0, path)
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
        return obj
    for name in AUTO_ATTRS:
        if is_asgi_app(getattr(mod, name, None)):
            return getattr(mod, name)
    for name, value in vars(mod).items():
        if not name.startswith("_") and is_asgi_app(value):
            return value
    raise AppNotFound(f"Module '{module}' defines no ASGI application; set APP_MODULE={module}:<variable>.")


def dev_factory() -> Any:
    """uvicorn --factory target for ``fastlaunch dev``: the reloader's child imports the app afresh."""
    module, _, attr = os.environ["FASTLAUNCH_APP"].partition(":")
    return import_app(module, attr or None, os.environ["FASTLAUNCH_APP_PATH"])
