"""The access log, kept off the request path.

A request leaves one flat tuple in a deque (no formatting, no I/O, no lock, nothing that keeps the request's
objects alive); a thread turns the tuples into lines in the configured format (LOG_FORMAT) for the configured
destination (ACCESS_LOG) and writes them in batches. A slow log consumer then delays log lines, not responses.

fastlaunch's own handlers and formatters write a batch as one string, without a LogRecord per line; any other
handler (a logging configuration of the user's own) gets ordinary records for the ``fastlaunch.access`` logger.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import NamedTuple

from fastlaunch.core.access_lines import LOGGER, AccessLine, BatchWriter, make_record


class Entry(NamedTuple):
    """What the middleware records per request: flat and immutable, holding no mutable object of the request
    (a scope held until its line is written would keep every request's objects alive into the collector's
    older generations)."""

    method: str
    raw_path: bytes | None
    path: str
    query: bytes
    client: tuple[str, int] | None
    http_version: str
    status: int
    seconds: float
    end: float  # wall-clock time the response ended
    request_id: str
    user_agent: bytes | None


def access_line(entry: Entry) -> AccessLine:
    """The line an entry shows as."""
    # raw_path is what the client sent, still percent-encoded: a decoded %0A cannot split the line.
    target = entry.raw_path.decode("latin-1") if entry.raw_path else entry.path
    if entry.query:
        target = f"{target}?{entry.query.decode('latin-1')}"
    client = entry.client
    return AccessLine(
        entry.end,
        f"{client[0]}:{client[1]}" if client else "-",
        entry.method,
        target,
        entry.http_version,
        entry.status,
        round(entry.seconds * 1000, 3),
        entry.user_agent.decode("latin-1") if entry.user_agent else "",
        entry.request_id,
    )


class AccessLog:
    """Call ``put(entry)`` per request; ``close()`` writes what is pending and stops the thread.

    ``put`` is ``deque.append``: no lock, no wake-up of the writer. The writer wakes every ``interval``
    seconds and writes everything pending, so one GIL hand-over and one write serve many requests.
    """

    def __init__(self, interval: float = 0.05, backlog: int = 65536) -> None:
        # Bounded: if the log consumer stalls, the oldest lines are dropped rather than memory growing.
        self._pending: deque[Entry] = deque(maxlen=backlog)
        self.put = self._pending.append
        self._interval = interval
        self._stop = threading.Event()
        self._logger = logging.getLogger(LOGGER)
        self._thread = threading.Thread(target=self._run, name="fastlaunch-access-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._write()
        self._write()

    def _write(self) -> None:
        pending = self._pending
        if not pending:
            return
        entries = [pending.popleft() for _ in range(len(pending))]
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        lines = [access_line(entry) for entry in entries]
        if logger.filters or logger.propagate:  # configured by someone else: let logging decide everything
            for line in lines:
                logger.handle(make_record(line))
            return
        pid = os.getpid()
        for handler in logger.handlers:
            if isinstance(handler, BatchWriter) and handler.takes_batches():
                handler.write_batch(lines, pid)
            else:
                for line in lines:
                    if logging.INFO >= handler.level:
                        handler.handle(make_record(line))

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
