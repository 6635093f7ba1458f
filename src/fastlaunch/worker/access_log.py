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
from typing import Any, NamedTuple, Protocol

from fastlaunch.core.log_files import LogFileHandler
from fastlaunch.request_id import RequestIdFilter

LOGGER = "fastlaunch.access"
TEXT = '%s - "%s %s HTTP/%s" %d %.1fms "%s"'
# Client-supplied text (path, user agent, forwarded client) must not forge a line or a field in the text format:
# C0, DEL and C1 controls (U+0085 and others end a line for str.splitlines()) become \xHH, a quote \" and a
# backslash \\, so a parser that reads escapes finds each quoted field where it ends (docs/observability.md).
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _escaped(text: str) -> str:
    # isprintable() is False for every control character: the common clean text skips translate().
    return text if text.isprintable() and '"' not in text and "\\" not in text else text.translate(_ESCAPES)


class Entry(NamedTuple):
    """What the middleware records per request: flat and immutable, holding no mutable object of the request
    (holding the scope until the line was written kept every request's objects alive into the collector's
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


class AccessLine(NamedTuple):
    """One request, as every format shows it."""

    created: float
    client: str
    method: str
    target: str
    http_version: str
    status: int
    duration_ms: float
    user_agent: str
    request_id: str

    @classmethod
    def of(cls, entry: Entry) -> AccessLine:
        # raw_path is what the client sent, still percent-encoded: a decoded %0A cannot split the line.
        target = entry.raw_path.decode("latin-1") if entry.raw_path else entry.path
        if entry.query:
            target = f"{target}?{entry.query.decode('latin-1')}"
        client = entry.client
        return cls(
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

    def message(self) -> str:
        """The text of the line (Gunicorn's access format, with client text escaped)."""
        return TEXT % (
            _escaped(self.client),  # a proxy-forwarded address is client text too
            self.method,
            _escaped(self.target),
            self.http_version,
            self.status,
            self.duration_ms,
            _escaped(self.user_agent),
        )

    def fields(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.target,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "client": self.client,
            "user_agent": self.user_agent,
            "http_version": self.http_version,
        }


class AccessFormatter(Protocol):
    def format_access(self, line: AccessLine, pid: int) -> str: ...


def make_record(line: AccessLine) -> logging.LogRecord:
    """A ``fastlaunch.access`` record, for handlers that are not fastlaunch's own."""
    record = logging.LogRecord(LOGGER, logging.INFO, __file__, 0, line.message(), (), None)
    record.created = line.created
    record.msecs = (line.created - int(line.created)) * 1000
    record.request_id = line.request_id
    record.access = line.fields()
    return record


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
        lines = [AccessLine.of(entry) for entry in entries]
        if logger.filters or logger.propagate:  # configured by someone else: let logging decide everything
            for line in lines:
                logger.handle(make_record(line))
            return
        pid = os.getpid()
        for handler in logger.handlers:
            if isinstance(handler, _BatchWriter) and handler.takes_batches():
                handler.write_batch(lines, pid)
            else:
                for line in lines:
                    if logging.INFO >= handler.level:
                        handler.handle(make_record(line))

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class _BatchWriter(logging.StreamHandler):  # type: ignore[type-arg]
    """Takes the access-log thread's lines as one string per batch, formatted without LogRecords, in one
    write and one flush."""

    def takes_batches(self) -> bool:
        # RequestIdFilter would add nothing to an access line; any other filter needs the record.
        return hasattr(self.formatter, "format_access") and all(isinstance(f, RequestIdFilter) for f in self.filters)

    def write_batch(self, lines: list[AccessLine], pid: int) -> None:
        if logging.INFO < self.level:
            return
        formatter: AccessFormatter = self.formatter  # type: ignore[assignment]
        text = "".join([f"{formatter.format_access(line, pid)}\n" for line in lines])
        with self.lock:  # type: ignore[union-attr]
            try:
                if self.stream is None:  # a FileHandler opened lazily
                    self.stream = self._open()  # type: ignore[attr-defined]
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # as logging does: report on stderr, keep serving
                self.handleError(make_record(lines[0]))


class BatchStreamHandler(_BatchWriter):
    """ACCESS_LOG=-."""


class BatchFileHandler(_BatchWriter, LogFileHandler):
    """ACCESS_LOG=path; still a FileHandler, so Gunicorn reopens it on SIGUSR1."""
