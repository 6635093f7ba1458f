"""The id of the request being handled in this context, and the logging filter that stamps it on every record.

The worker's middleware sets it; apps read it through ``fastlaunch.request_id``; every log format writes it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("fastlaunch_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` in the thread that logs, where the request's context is current."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True
