"""The access log, kept off the request path.

A request leaves one tuple in a deque (no formatting, no I/O, no lock); a thread turns the tuples into
``fastlaunch.access`` log records, so the configured format (LOG_FORMAT) and destination (ACCESS_LOG)
apply, and writes them in batches. A slow log consumer then delays log lines, not responses.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

LOGGER = "fastlaunch.access"
TEXT = '%s - "%s %s HTTP/%s" %d %.1fms "%s"'
# Client-supplied text (path, user agent) must not forge a line or a field in the text format.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), 127]} | {ord('"'): '\\"'}

# scope, status, seconds taken, wall-clock end, request id, user agent
Entry = tuple[dict[str, Any], int, float, float, str, bytes | None]


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _target(scope: dict[str, Any]) -> str:
    raw = scope.get("raw_path")
    # raw_path is what the client sent, still percent-encoded: a decoded %0A cannot split the line.
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    query = scope.get("query_string")
    return f"{path}?{query.decode('latin-1')}" if query else path


class AccessRecord(logging.LogRecord):
    """A LogRecord without LogRecord.__init__'s per-record lookups (pid, thread, caller's file), which are
    the same for every access line: copied from one record made in the access-log thread."""

    template: dict[str, Any] = {}

    @classmethod
    def capture_template(cls) -> None:
        """Call in the thread (and process) that will make the records."""
        cls.template = vars(logging.LogRecord(LOGGER, logging.INFO, __file__, 0, TEXT, (), None))

    def __init__(self, msg: str, args: tuple[Any, ...], created: float) -> None:
        self.__dict__.update(self.template)
        self.msg, self.args, self.created = msg, args, created
        self.msecs = (created - int(created)) * 1000
        self.relativeCreated = (created - logging._startTime) * 1000  # type: ignore[attr-defined]


def make_record(entry: Entry) -> logging.LogRecord:
    scope, status, seconds, end, request_id, user_agent = entry
    method = scope.get("method", "-")
    target = _target(scope)
    client = _client(scope)
    agent = user_agent.decode("latin-1") if user_agent else ""
    version = scope.get("http_version", "1.1")
    duration_ms = round(seconds * 1000, 3)
    args = (client, method, target.translate(_ESCAPES), version, status, duration_ms, agent.translate(_ESCAPES))
    if not AccessRecord.template:
        AccessRecord.capture_template()
    record = AccessRecord(TEXT, args, end)
    record.request_id = request_id
    record.access = {
        "method": method,
        "path": target,
        "status": status,
        "duration_ms": duration_ms,
        "client": client,
        "user_agent": agent,
        "http_version": version,
    }
    return record


class AccessLog:
    """Call ``put(entry)`` per request; ``close()`` writes what is pending and stops the thread.

    ``put`` is ``deque.append``: no lock, no wake-up of the writer. The writer wakes every ``interval``
    seconds and writes everything pending, so one GIL hand-over and one flush serve many requests.
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
        AccessRecord.capture_template()
        while not self._stop.wait(self._interval):
            self._write()
        self._write()

    def _write(self) -> None:
        pending, logger = self._pending, self._logger
        if not pending:
            return
        enabled = logger.isEnabledFor(logging.INFO)
        while pending:
            entry = pending.popleft()
            if enabled:
                logger.handle(make_record(entry))
        for handler in logger.handlers:
            getattr(handler, "flush_batch", handler.flush)()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class BatchStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """ACCESS_LOG=-: writes without flushing; the access-log thread flushes once per batch."""

    def flush(self) -> None:
        pass

    def flush_batch(self) -> None:
        logging.StreamHandler.flush(self)


class BatchFileHandler(logging.FileHandler):
    """ACCESS_LOG=path: as BatchStreamHandler; still a FileHandler, so Gunicorn reopens it on SIGUSR1."""

    def flush(self) -> None:
        pass

    def flush_batch(self) -> None:
        logging.FileHandler.flush(self)
