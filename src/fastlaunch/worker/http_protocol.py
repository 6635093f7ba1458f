"""The HTTP/1.1 protocol the worker serves with: Uvicorn's httptools protocol, sending a response's head and
the start of its body in one write.

Uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the body when
it sends ``http.response.body``: two ``write()`` system calls and two TCP segments for every response, and the
client wakes twice. The ASGI spec lets a server hold the head until the first body message (Hypercorn, Daphne
and Granian do), and nearly every response sends both back to back, so the head waits for the body and both
leave together. Measured here on the docs app's ``/async`` (2 workers, wrk -c64): 5-12 % more requests/s.

Only a response that declares its length is held. A streaming response without one (chunked: server-sent
events, long polls) has its head sent at once, as before, so its client sees the headers before the first
chunk however long that takes. Nor is the head of a HEAD response: no body follows it.

The protocol also bounds what a client may hold: a connection that sends nothing is closed after the keep-alive
time, a request head must arrive within HEADER_TIMEOUT of its first byte, and a head over Gunicorn's
``limit_request_line`` / ``limit_request_fields`` / ``limit_request_field_size`` is refused (414/431) and its
connection closed. Uvicorn has none of these: idle and slowloris connections stayed open for ever, and a head
of any size was buffered.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, NoReturn

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

# Above this a body is handed to the transport next to the head (one writev) rather than copied onto it.
COPY_LIMIT = 16 * 1024


class HeadWithBody:
    """The transport as a connection's request cycles see it. One per connection, reused by every request on
    it; the protocol itself keeps the real transport."""

    __slots__ = ("_transport", "cycle", "head_done", "_head")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.cycle: RequestResponseCycle | None = None
        self.head_done = True
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= COPY_LIMIT:
                self._transport.write(head + data)
            else:
                self._transport.writelines((head, data))
            return
        cycle = self.cycle
        # Uvicorn marks the response started just before it writes the head, and has read its headers by
        # then: what is written earlier (a "100 Continue") goes out at once, as does a chunked response's head.
        if not self.head_done and cycle is not None and cycle.response_started:
            self.head_done = True
            # Held only when a body of declared length follows: a HEAD response writes none (an endless
            # stream answering HEAD would hold its head for ever), a chunked one may be slow to come.
            if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
                self._head = data
                return
        self._transport.write(data)

    def send_held(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)

    def close(self) -> None:
        self.send_held()  # the app failed between head and body: send what Uvicorn would have sent
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else a cycle may use, as the real transport
        return getattr(self._transport, name)


class HeadLimits(NamedTuple):
    """What a request head may be, from Gunicorn's settings (0: unlimited, as in Gunicorn), and how long a
    client may take to send it."""

    request_line: int = 4094  # limit_request_line
    fields: int = 100  # limit_request_fields
    field_size: int = 8190  # limit_request_field_size
    header_timeout: float = 10.0  # HEADER_TIMEOUT

    @property
    def head_bytes(self) -> int | None:
        """The most a whole head may take: httptools keeps a header's name and value until both are complete,
        so this, checked as bytes arrive, is what bounds a connection's memory."""
        if not self.request_line or not self.field_size:
            return None
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a head over a limit."""


class HttpToolsOneWriteProtocol(HttpToolsProtocol):
    limits = HeadLimits()
    _head_with_body: HeadWithBody | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = -1  # bytes of the current head received so far; -1 between heads
    _fields = 0
    _refusal: tuple[int, bytes] | None = None

    @classmethod
    def with_limits(cls, limits: HeadLimits) -> type[HttpToolsOneWriteProtocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- slow and idle clients

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Uvicorn arms its keep-alive timer only after a response: a connection that never sends a byte
        # stayed open forever. It gets the keep-alive time, as an idle connection between requests does.
        idle = self.timeout_keep_alive or self.limits.header_timeout
        if idle:
            self.timeout_keep_alive_task = self.loop.call_later(idle, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._fields = 0
        # From a head's first byte, the whole head must arrive within HEADER_TIMEOUT, however it trickles in.
        if self._head_timer is None and self.limits.header_timeout:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head waits behind a response in progress (reading is paused): its time starts over.
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
            return
        self._refuse_now(408, b"Request head not received in time")

    # -- request head limits

    def data_received(self, data: bytes) -> None:
        if self._head_bytes >= 0:
            self._head_bytes += len(data)
            most = self.limits.head_bytes
            if most is not None and self._head_bytes > most:
                self._unset_keepalive_if_required()
                self._refuse_now(431, b"Request header fields too large")
                return
        super().data_received(data)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        limit = self.limits.request_line
        # The request line is METHOD SP target SP HTTP/x.y: the target is all that can grow.
        if limit and len(self.url) + len(self.parser.get_method()) + 10 > limit:
            self._refuse(414, b"Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self.limits.fields and self._fields > self.limits.fields:
            self._refuse(431, b"Too many request header fields")
        if self.limits.field_size and len(name) + len(value) + 2 > self.limits.field_size:
            self._refuse(431, b"Request header field too large")
        super().on_header(name, value)

    def _refuse(self, status: int, reason: bytes) -> NoReturn:
        self._refusal = (status, reason)
        raise Refused  # httptools stops and raises a parser error, which Uvicorn answers with a 400 ...

    def send_400_response(self, msg: str) -> None:
        refusal, self._refusal = self._refusal, None  # ... which, for a head over a limit, is ours instead
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse_now(*refusal)

    def _refuse_now(self, status: int, reason: bytes) -> None:
        self._stop_head_timer()
        self._head_bytes = -1
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(reason))
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", reason]))
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        self._head_bytes = -1
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # Uvicorn has made the request's cycle and queued (not started) its task; an upgrade makes none. A
        # pipelined request, queued behind a response still in progress, keeps the real transport.
        if cycle is previous or cycle is None or (previous is not None and not previous.response_complete):
            return
        shared = self._head_with_body
        if shared is None:
            shared = self._head_with_body = HeadWithBody(self.transport)
        shared.cycle = cycle
        shared.head_done = False
        cycle.transport = shared  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        # A response can complete without writing a body (Uvicorn writes none for HEAD): its head leaves now,
        # not with the next response on the connection.
        if self._head_with_body is not None:
            self._head_with_body.send_held()
        super().on_response_complete()
