"""What a request head may be and how long it may take, shared by the worker's HTTP protocols (httptools:
worker/http_protocol.py; h11, where httptools cannot be imported: worker/h11_protocol.py)."""

from __future__ import annotations

from http import HTTPStatus
from typing import NamedTuple


class HeadLimits(NamedTuple):
    """What a request head may be, from Gunicorn's settings (0: unlimited, as in Gunicorn), and how long a
    client may take to send it."""

    request_line: int = 4094  # limit_request_line
    fields: int = 100  # limit_request_fields
    field_size: int = 8190  # limit_request_field_size
    header_timeout: float = 10.0  # HEADER_TIMEOUT

    @property
    def unchecked(self) -> tuple[int, int]:
        """The most bytes and fields a head may have and be within every limit, whatever its shape."""
        most_bytes = min(limit for limit in (self.request_line, self.field_size, 2**62) if limit)
        return most_bytes, self.fields or 2**62

    @property
    def head_bytes(self) -> int | None:
        """The most a whole head may take: a parser keeps a header's name and value until both are complete,
        so this, checked as bytes arrive, is what bounds a connection's memory."""
        if not self.request_line or not self.field_size:
            return None
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2


def refusal(status: int, reason: bytes, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole response refusing a request (414, 431, 408), written as the protocol closes the connection."""
    head = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
    for name, value in default_headers:
        head.append(b"%s: %s\r\n" % (name, value))
    head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(reason))
    return b"".join([*head, b"connection: close\r\n\r\n", reason])
