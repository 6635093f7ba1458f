"""The two line formats, LOG_FORMAT=text and LOG_FORMAT=json, shared by every logger in every process.

``record.request_id`` comes from ``RequestIdFilter``; access records (``fastlaunch.access``) also carry
``record.access``, the request's fields.
"""

from __future__ import annotations

import json
import logging
import time
from json.encoder import encode_basestring_ascii as _quoted  # how _encode writes a str (ensure_ascii)
from typing import Any

from fastlaunch.core.access_lines import AccessLine

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
TEXT_DATEFMT = "%Y-%m-%d %H:%M:%S %z"


class TextFormatter(logging.Formatter):
    """Gunicorn's line format, so the launcher, Gunicorn, Uvicorn and the app read as one log."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, TEXT_DATEFMT)
        self._cache = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self._stamp(record.created)

    def _stamp(self, created: float) -> str:
        # One strftime per second instead of one per line: it is most of a line's formatting cost.
        second = int(created)
        cached, stamp = self._cache  # one tuple: threads share the formatter
        if second != cached:
            stamp = time.strftime(TEXT_DATEFMT, self.converter(created))
            self._cache = (second, stamp)
        return stamp

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return _tagged(super().formatMessage(record), getattr(record, "request_id", None))

    def format_access(self, line: AccessLine, pid: int) -> str:
        """The line ``format`` would make from the access record (TEXT_FORMAT), without making the record."""
        return _tagged(f"[{self._stamp(line.created)}] [{pid}] [INFO] {line.message()}", line.request_id)


def _tagged(text: str, request_id: str | None) -> str:
    return f"{text} request_id={request_id}" if request_id else text


_encode = json.JSONEncoder(default=str).encode  # built once: json.dumps(default=...) builds one per call
# An access line as _encode writes it (same keys, order, separators, escaping), filled in by one % instead of
# walking a dict: about 4 us a line instead of 8 (the access-log thread writes one per request).
_ACCESS_JSON = (
    '{"time": "%s", "level": "INFO", "logger": "fastlaunch.access", "message": %s, "pid": %d, "request_id": %s, '
    '"method": %s, "path": %s, "status": %d, "duration_ms": %r, "client": %s, "user_agent": %s, '
    '"http_version": %s}'
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid, and request_id inside a request."""

    def __init__(self) -> None:
        super().__init__()
        self._cache = (-1, "")

    def _time(self, created: float) -> str:
        second = int(created)
        cached, stamp = self._cache
        if second != cached:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cache = (second, stamp)
        return f"{stamp}.{int((created - second) * 1000):03d}Z"

    def _entry(
        self, created: float, level: str, logger: str, message: str, pid: int | None, request_id: Any
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": message,
            "pid": pid,
        }
        if request_id:
            entry["request_id"] = request_id
        return entry

    def format_access(self, line: AccessLine, pid: int) -> str:
        """The line ``format`` would make from the access record, without making the record."""
        # The template's %d and %r write what json writes only for a plain int and float.
        if not line.request_id or type(line.status) is not int or type(line.duration_ms) is not float:
            entry = self._entry(line.created, "INFO", "fastlaunch.access", line.message(), pid, line.request_id)
            entry.update(line.fields())
            return _encode(entry)
        return _ACCESS_JSON % (
            self._time(line.created),
            _quoted(line.message()),
            pid,
            _quoted(line.request_id),
            _quoted(line.method),
            _quoted(line.target),
            line.status,
            line.duration_ms,
            _quoted(line.client),
            _quoted(line.user_agent),
            _quoted(line.http_version),
        )

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        entry = self._entry(
            record.created, record.levelname, record.name, record.getMessage(), record.process, request_id
        )
        access = getattr(record, "access", None)
        if access:
            entry.update(access)
        elif record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # Uvicorn's own access line (another WORKER_CLASS): same fields as ours.
            client, method, path, http_version, status = record.args
            entry.update(method=method, path=path, status=status, client=client, http_version=http_version)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return _encode(entry)
