"""Log files (ERROR_LOG, ACCESS_LOG) opened so that a root master cannot be led astray by what workers left.

Under WORKER_USER the master (root) and the workers write the same files, and the master reopens them by name
on SIGUSR1 (rotation) and SIGHUP (reload). A file the master creates belongs to the workers' user, so they can
still write it after rotation. In a directory anyone but root can write, a name may have been replaced by a
link or a FIFO: there the file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and used only if it is a regular file;
otherwise the lines go nowhere, with a warning on stderr, until the next reopen finds a regular file.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from typing import IO, Any, ClassVar


def others_may_write(directory: str) -> bool:
    info = os.stat(directory)
    return info.st_uid != os.geteuid() or bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def open_log(path: str, owner: tuple[int, int] | None) -> int:
    """A descriptor appending to ``path``; OSError for a link or a non-regular file where others may write."""
    guarded = others_may_write(os.path.dirname(path) or ".")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | (os.O_NOFOLLOW | os.O_NONBLOCK if guarded else 0)
    try:  # O_EXCL: a file made here, never through a link planted under its name
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        fd = os.open(path, flags)
        if guarded and not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} is not a regular file") from None
        return fd
    if owner and os.geteuid() == 0:
        os.fchown(fd, *owner)  # the workers write it too
    return fd


class LogFileHandler(logging.FileHandler):
    """``logging.FileHandler`` opening its file as ``open_log`` does (Gunicorn reopens it on SIGUSR1)."""

    owner: ClassVar[tuple[int, int] | None] = None  # WORKER_USER's (uid, gid): set by the launcher, as root

    def _open(self) -> IO[Any]:  # type: ignore[override]  # a text stream, as logging opens
        try:
            fd = open_log(self.baseFilename, self.owner)
        except OSError as exc:
            print(f"fastlaunch: log file {self.baseFilename} not opened: {exc.strerror or exc}", file=sys.stderr)
            return open(os.devnull, self.mode, encoding=self.encoding)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)
