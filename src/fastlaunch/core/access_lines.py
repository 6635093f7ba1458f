"""An access line as every log format shows it, and the handlers that write many of them at once.

Shared by the worker's access-log thread (``fastlaunch.worker.access_log``), which makes the lines, and the
logging configuration (``fastlaunch.core.logs``) and formats (``fastlaunch.core.log_formats``), which write them.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Protocol

from fastlaunch.core.log_files import LogFileHandler
from fastlaunch.core.request_context import RequestIdFilter

LOGGER = "fastlaunch.access"
TEXT = '%s - "%s %s HTTP/%s" %d %.1fms "%s"'
# Client-supplied text (path, user agent, forwarded client) must not forge a line or a field in the text format:
# C0, DEL and C1 controls (U+0085 and others end a line for str.splitlines()) become \xHH, a quote \" and a
# backslash \\, so a parser that reads escapes finds each quoted field where it ends (docs/observability.md).
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _escaped(text: str) -> str:
    # isprintable() is False for every control character: the common clean text skips translate().
    return text if text.isprintable() and '"' not in text and "\\" not in text else text.translate(_ESCAPES)


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


class BatchWriter(logging.StreamHandler):  # type: ignore[type-arg]
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


class BatchStreamHandler(BatchWriter):
    """ACCESS_LOG=-."""


class BatchFileHandler(BatchWriter, LogFileHandler):
    """ACCESS_LOG=path; still a FileHandler, so Gunicorn reopens it on SIGUSR1."""
