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

__all__ = [
    "HEADER",
    "REQUEST_ID",
    "FreshId",
    "RequestIdFilter",
    "choose",
    "fresh_id",
    "get_request_id",
    "head_line",
    "ids",
]


def get_request_id() -> str | None:
    """The current request's id, or None outside a request."""
    return REQUEST_ID.get()


class Ids:
    """Fresh ids: a random 64-bit prefix per process and a counter (32 hex digits), each as text, as the request
    header the app is given and as the line of the response head. Unique without a getrandom() call per request;
    the prefix is redrawn in every forked worker.

    Made 256 at a time, all in C (formatting one large integer as hex, or one header line, costs more than the
    rest of the request id's work), so taking one is a step of an iterator."""

    next_id: Callable[[], FreshId]  # a fresh id: (text, (HEADER, bytes), b"x-request-id: ...\r\n")

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        batches = map(_batch, itertools.repeat(os.urandom(8)), itertools.count())
        self.next_id = itertools.chain.from_iterable(batches).__next__

    def next_pair(self) -> tuple[str, bytes]:
        """A fresh id, as text and as bytes."""
        text, (_, raw), _ = self.next_id()
        return text, raw

    def next(self) -> str:
        """A fresh id."""
        return self.next_id()[0]


FreshId = tuple[str, tuple[bytes, bytes], bytes]


def head_line(raw: bytes) -> bytes:
    """The response head's line carrying the id ``raw``."""
    return b"%s: %s\r\n" % (HEADER, raw)


def _batch(prefix: bytes, high: int) -> zip[FreshId]:
    """The 256 ids whose counter's high 56 bits are ``high``: 16 bytes each, the last byte counting."""
    block = bytearray((prefix + high.to_bytes(7, "big") + b"\0") * 256)
    block[15::16] = _LOW_BYTES
    text = block.hex("\n", 16)  # one id a line
    raw = text.encode("ascii")
    # One head line per id, split apart at the NULs (never in an id).
    lines = head_line(raw.replace(b"\n", b"\r\n\0%s: " % HEADER)).split(b"\0")
    headers = zip(itertools.repeat(HEADER), raw.split(b"\n"))
    return zip(text.split("\n"), headers, lines, strict=True)


_LOW_BYTES = bytes(range(256))
ids = Ids()


def fresh_id() -> str:
    """A fresh id (32 hex digits)."""
    return ids.next()


def choose(incoming: bytes | None) -> str:
    """The incoming id when it is a sane token, else a fresh one (32 hex digits)."""
    if incoming is not None and _SANE.fullmatch(incoming):
        return incoming.decode("ascii")
    return fresh_id()
