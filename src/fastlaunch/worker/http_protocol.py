"""The HTTP/1.1 protocol the worker serves with: Uvicorn's httptools protocol, sending a response's head and
the start of its body in one write.

Uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the body when
it sends ``http.response.body``: two ``write()`` system calls and two TCP segments for every response, and the
client wakes twice. The ASGI spec lets a server hold the head until the first body message (Hypercorn, Daphne
and Granian do), and nearly every response sends both back to back, so the head waits for the body and both
leave together. Measured here on the docs app's ``/async`` (2 workers, wrk -c64): 5-12 % more requests/s.

Only a response that declares its length is held. A streaming response without one (chunked: server-sent
events, long polls) has its head sent at once, as before, so its client sees the headers before the first
chunk however long that takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

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
            if cycle.chunked_encoding is not True:
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


class HttpToolsOneWriteProtocol(HttpToolsProtocol):
    _head_with_body: HeadWithBody | None = None

    def on_headers_complete(self) -> None:
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
