"""The id of the request being handled, for every log line emitted while handling it.

Apps read it with ``get_request_id()``. The middleware (``fastlaunch.worker.middleware``) sets it from a sane
incoming ``X-Request-ID`` or a fresh random one. The context variable and the logging filter live in
``fastlaunch.core.request_context``, which every process's logging uses; beyond it, only the standard library.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable

from fastlaunch.core.request_context import REQUEST_ID, RequestIdFilter

HEADER = b"x-request-id"
MAX_LENGTH = 128
# Ids from proxies and tracers (UUIDs, AWS "Root=1-...", base64) fit; whitespace, quotes and control
# characters do not, so an id can never break a log line or a header.
_SANE = re.compile(rb"[A-Za-z0-9._:=+/@-]{1,%d}" % MAX_LENGTH)

__all__ = ["HEADER", "REQUEST_ID", "RequestIdFilter", "choose", "fresh_id", "get_request_id", "ids"]


def get_request_id() -> str | None:
    """The current request's id, or None outside a request."""
    return REQUEST_ID.get()


class Ids:
    """Fresh ids: a random 64-bit prefix per process and a counter (32 hex digits). Unique without a
    getrandom() call per request; the prefix is redrawn in every forked worker."""

    next: Callable[[], str]  # a fresh id

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        # The prefix is the counter's high 64 bits: one formatting per id, and all of it in C (no Python frame).
        counter = itertools.count(int.from_bytes(os.urandom(8)) << 64)
        self.next = map("%032x".__mod__, counter).__next__


ids = Ids()


def fresh_id() -> str:
    """A fresh id (32 hex digits)."""
    return ids.next()


def choose(incoming: bytes | None) -> str:
    """The incoming id when it is a sane token, else a fresh one (32 hex digits)."""
    if incoming is not None and _SANE.fullmatch(incoming):
        return incoming.decode("ascii")
    return fresh_id()
