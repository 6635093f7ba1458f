"""Workers running as an unprivileged WORKER_USER that were denied a file: how a boot failure is recognised as
such (from its traceback, in the worker) and what the master says, with the two fixes. The worker tells the
master the path through the channel (``core.channel``: ``tell_denied`` / ``heard_denied``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import traceback

# What the boot traceback of a file the worker's user may not open looks like: Python's own PermissionError
# (errno 13 EACCES, or 1 EPERM for chmod/chown), and SQLite's errors for a database file it cannot create
# or write, which name no path.
DENIED = re.compile(
    r"PermissionError|\[Errno 13\]|EACCES|unable to open database file|attempt to write a readonly database"
)
DENIED_PATH = re.compile(r"\[Errno (?:13|1)\] (?:Permission denied|Operation not permitted): '([^'\n]{1,1000})'")
SQLITE = re.compile(r"unable to open database file|attempt to write a readonly database")


def denied_path(traceback_text: str, cwd: str) -> str | None:
    """None when the traceback shows no permission problem; else the path it names (absolute), or, for SQLite's
    pathless errors, the working directory when this user cannot write it; "" when no path is known."""
    if not DENIED.search(traceback_text):
        return None
    named = DENIED_PATH.findall(traceback_text)
    if named:
        return os.path.normpath(os.path.join(cwd, named[-1]))
    if SQLITE.search(traceback_text) and not os.access(cwd, os.W_OK):
        return cwd
    return ""


class ErrorTail(logging.Handler):
    """The last error records of a logger, as text: Uvicorn logs a failed lifespan startup's traceback (Starlette
    sends it as text) and keeps no exception object."""

    def __init__(self, limit: int = 20_000) -> None:
        super().__init__(logging.ERROR)
        self.limit = limit
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            shown = record.getMessage()
            if record.exc_info:
                shown += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.text = (self.text + "\n" + shown)[-self.limit :]


def write_fix(owner: str, directory: str) -> str:
    """The two ways out when the app wrote where WORKER_USER may not (owner: "user:group")."""
    return (
        f"Give that user a directory of its own and keep the app's files there (mkdir -p {directory}/data && chown "
        f"{owner} {directory}/data, as a RUN line in a Dockerfile; then e.g. sqlite:///{directory}/data/app.db), or "
        "run the workers as root, as the tiangolo images did: WORKER_USER=root (the default of fastlaunch's "
        "drop-in image)."
    )


def read_fix(owner: str, directory: str) -> str:
    """The two ways out when WORKER_USER cannot read the app itself."""
    return (
        f"Make the app readable by that user (chmod -R a+rX {directory}, or chown -R {owner} {directory}), or run "
        "the workers as root: WORKER_USER=root (the default of fastlaunch's drop-in image)."
    )


def denied_message(user: str, uid: int, path: str, *, doing: str) -> str:
    where = repr(path) if path else "a file or directory (the traceback above names it)"
    return f"The workers run as WORKER_USER={user} (uid {uid}), which was denied {where} {doing}."
