"""Logging for the launcher itself, in Gunicorn's line format so the master's output reads as one log."""

from __future__ import annotations

import logging
import sys

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S %z"


def configure(level: str = "info") -> None:
    logger = logging.getLogger("fastlaunch")
    logger.setLevel("DEBUG" if level in ("debug", "trace") else level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        logger.addHandler(handler)
    logger.propagate = False
