"""Uvicorn's loggers inside a worker: routed by fastlaunch's one logging configuration (core/logs.py), never
sharing Gunicorn's handler lists, and no access line from Uvicorn's protocol."""

from __future__ import annotations

import logging
from typing import Any


def own_uvicorn_loggers(log: Any) -> None:
    """Gives "uvicorn.error" and "uvicorn.access" their own handler lists; ``log`` is Gunicorn's logger."""
    # uvicorn-worker made them share Gunicorn's handler *lists* (in the master, where workers are made). A SIGHUP
    # re-applies the logging configuration, which empties one list through the other: every later line of Gunicorn
    # and Uvicorn went to logging's bare last-resort handler, or nowhere. The one configuration already routes both
    # loggers; give each its own copy.
    for name, gunicorn_logger in (("uvicorn.error", log.error_log), ("uvicorn.access", log.access_log)):
        logger = logging.getLogger(name)
        if logger.handlers is gunicorn_logger.handlers:
            logger.handlers = list(gunicorn_logger.handlers)


def silence_uvicorn_access() -> None:
    """Called once the app is loaded. fastlaunch's middleware writes the access log (or, with ACCESS_LOG empty,
    nothing does). An app that attached its own handler to uvicorn.access while loading (the loguru recipe) would
    make Uvicorn's protocol log each request a second time, even with the access log off."""
    logging.getLogger("uvicorn.access").disabled = True
