"""Checks of settings that only the machine can judge (a log path, a worker class), made before
logging is configured and before Gunicorn starts: each would otherwise end in a traceback deep inside it."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.worker_class import FASTLAUNCH_WORKER, worker_class


def check_log_destinations(settings: Settings) -> None:
    """ACCESS_LOG and ERROR_LOG must be files this process can append to (created if missing)."""
    for name in ("error_log", "access_log"):
        destination = getattr(settings, name)
        if destination in (None, "-"):
            continue
        path = Path(destination)
        path = path if path.is_absolute() else settings.project_dir / path
        problem = _unwritable(path)
        if problem:
            env = name.upper()
            raise ConfigError(
                f"{env}={destination!r} ({settings.source(name).describe()}): {problem}.",
                hint=f"Create the directory or fix the path; {env}=- writes to "
                f"{'stderr' if name == 'error_log' else 'stdout'}, {env}= turns it off.",
            )


def _unwritable(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable by uid {os.geteuid()}"
    parent = path.parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create a file in {parent} as uid {os.geteuid()}"
    return None


def check_worker_class(settings: Settings) -> None:
    """WORKER_CLASS must name a Gunicorn worker class that imports (Gunicorn would print a traceback, then a
    bare exit status)."""
    spec = worker_class(settings)
    where = f"WORKER_CLASS={spec!r} ({settings.source('worker_class').describe()})"
    hint = f"Use {FASTLAUNCH_WORKER} (the default), or MODULE.CLASS of a Gunicorn worker class."
    if spec.startswith("egg:"):
        return
    if "." not in spec:  # Gunicorn's own names: sync, gthread, ...
        from gunicorn.workers import SUPPORTED_WORKERS

        if spec not in SUPPORTED_WORKERS:
            raise ConfigError(f"{where}: Gunicorn has no worker named {spec}.", hint=hint)
        return
    module_name, _, attribute = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name} ({exc}).", hint=hint) from None
    except Exception as exc:  # the module itself failed: its own error, in one line
        raise ConfigError(f"{where}: importing {module_name} failed: {type(exc).__name__}: {exc}.", hint=hint) from None
    worker = getattr(module, attribute, None)
    from gunicorn.workers.base import Worker

    if not (isinstance(worker, type) and issubclass(worker, Worker)):
        found = "nothing" if worker is None else type(worker).__name__
        raise ConfigError(
            f"{where}: {module_name} has no Gunicorn worker class {attribute} (found {found}).", hint=hint
        )


def note_without_httptools(settings: Settings, log: logging.Logger) -> None:
    """Where httptools cannot be imported (no wheel for this platform), the worker serves with Uvicorn's h11
    protocol, with the same limits and timeouts (worker/h11_protocol.py), but slower: say so once. Where Uvicorn's
    h11 protocol has changed, the worker's own check names what is then off (worker/internals.py)."""
    if worker_class(settings) != FASTLAUNCH_WORKER:
        return
    try:
        import httptools  # noqa: F401
    except ImportError as exc:
        log.info(
            "httptools cannot be imported here (%s): workers serve HTTP with Uvicorn's h11 protocol, which is "
            "slower. Install httptools (pip install httptools, part of uvicorn[standard]) for the faster parser",
            exc,
        )
