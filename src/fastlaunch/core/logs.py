"""The one logging configuration: the launcher applies it, Gunicorn applies it (``logconfig_dict``) in the
master, and workers inherit it, so the launcher, Gunicorn, Uvicorn, fastlaunch and the app's own loggers
all write the same format (LOG_FORMAT) to the same destinations (ERROR_LOG, ACCESS_LOG)."""

from __future__ import annotations

import logging.config
from typing import Any

_FORMATTERS = {"text": "fastlaunch.core.log_formats.TextFormatter", "json": "fastlaunch.core.log_formats.JsonFormatter"}


def python_level(level: str) -> str:
    return "DEBUG" if level in ("debug", "trace") else level.upper()


def _handler(destination: str | None, stream: str, *, batched: bool = False) -> dict[str, Any]:
    if destination is None:  # ERROR_LOG="" / ACCESS_LOG="": off
        return {"class": "logging.NullHandler"}
    common = {"formatter": "line", "filters": ["request_id"]}
    if destination == "-":
        cls = "fastlaunch.core.access_lines.BatchStreamHandler" if batched else "logging.StreamHandler"
        return {"class": cls, "stream": stream, **common}
    cls = "fastlaunch.core.access_lines.BatchFileHandler" if batched else "fastlaunch.core.log_files.LogFileHandler"
    return {"class": cls, "filename": destination, **common}


def dict_config(
    level: str = "info", fmt: str = "text", *, error_log: str | None = "-", access_log: str | None = "-"
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for the whole server."""
    lvl = python_level(level)

    def error() -> dict[str, Any]:
        return {"level": lvl, "handlers": ["error"], "propagate": False}

    def access() -> dict[str, Any]:
        return {"level": "INFO", "handlers": ["access"], "propagate": False}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "fastlaunch.core.request_context.RequestIdFilter"}},
        "formatters": {"line": {"()": _FORMATTERS[fmt]}},
        "handlers": {
            "error": _handler(error_log, "ext://sys.stderr"),
            "access": _handler(access_log, "ext://sys.stdout"),
            # fastlaunch's own access lines: written by one thread, flushed once per batch of lines.
            "access_batched": _handler(access_log, "ext://sys.stdout", batched=True),
        },
        "root": {"level": lvl, "handlers": ["error"]},
        "loggers": {
            "fastlaunch": error(),
            "fastlaunch.access": {"level": "INFO", "handlers": ["access_batched"], "propagate": False},
            "gunicorn.error": error(),
            "gunicorn.access": access(),
            "uvicorn": error(),
            "uvicorn.error": {"level": lvl, "propagate": True},
            "uvicorn.access": access(),
        },
    }


def configure(level: str = "info", fmt: str = "text", *, error_log: str | None = "-") -> None:
    """Logging for the launcher before Gunicorn starts (which re-applies the same configuration): its lines
    go where ERROR_LOG says, like the server's."""
    logging.config.dictConfig(dict_config(level, fmt, error_log=error_log))
