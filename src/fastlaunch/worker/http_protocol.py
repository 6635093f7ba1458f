"""The HTTP/1.1 protocol the worker serves with: Uvicorn's httptools protocol, sending a response's head and
the start of its body in one write.

Uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the body when
it sends ``http.response.body``: two ``write()`` system calls and two TCP segments for every response, and the
client wakes twice. The ASGI spec lets a server hold the head until the first body message (Hypercorn, Daphne
and Granian do), and nearly every response sends both back to back, so the head waits for the body and both
leave together. Measured here on the docs app's ``/async`` (2 workers, wrk -c64): 5-12 % more requests/s.

Every line here runs for every request, so the per-request path is kept short and measured in instructions
(callgrind over ``bench.inprocess``'s in-memory connection): with the limits below, the protocol costs about as
much as Uvicorn's own, whose proxy-headers layer the worker leaves out.

Only a response that declares its length is held. A streaming response without one (chunked: server-sent
events, long polls) has its head sent at once, as before, so its client sees the headers before the first
chunk however long that takes. Nor is the head of a HEAD response: no body follows it.

The protocol also bounds what a client may hold: a connection that sends nothing is closed after the keep-alive
time, a request head must arrive within HEADER_TIMEOUT of its first byte, and a head over Gunicorn's
``limit_request_line`` / ``limit_request_fields`` / ``limit_request_field_size`` is refused (414/431) and its
connection closed. Uvicorn has none of these: idle and slowloris connections stayed open for ever, and a head
of any size was buffered. A body, too, must arrive in time (BODY_TIMEOUT, worker/body_timeout.py), whether the
app reads it or has already answered without it.
"""

from __future__ import annotations

import types
from time import perf_counter
from typing import Any, NoReturn

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.client_bounds import ClientBounds
from fastlaunch.worker.head_limits import HeadLimits
from fastlaunch.worker.internals import cycle_replaceable

# Above this a body is handed to the transport next to the head (one writev) rather than copied onto it.
COPY_LIMIT = 16 * 1024


class OneWriteCycle(RequestResponseCycle):
    """Uvicorn's request cycle, holding a response's head until its first body message and writing both at once.

    The protocol makes one of these for every request. The head is built as Uvicorn builds it; Uvicorn's own
    ``send`` handles what is not on the held path (streams, HEAD, further body messages). A wrapper around the
    transport did the same for every write and cost more than the write it saved (about 17,000 instructions per
    request, measured with callgrind, against about 1,000 for this).

    It also serves fastlaunch's middleware (worker/middleware.py), which would otherwise wrap ``send`` to learn
    the status and add the request id: it records the status and adds ``id_header``, unless the app set its own
    X-Request-ID. Uvicorn's access log is never written from here: the worker turns it off and logs in the
    middleware.
    """

    _held: bytes | None = None
    status = 500  # the response's, once started: the server answers 500 when the app raises before
    id_header: tuple[bytes, bytes] | None = None
    body_timed_out = False  # answered 408 by BODY_TIMEOUT: what the app raises then (ClientDisconnect) is expected
    arrived = 0.0  # perf_counter() when the head was parsed: admission control's queueing delay (worker/admission.py)

    async def send(self, message: Any) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if message["type"] == "http.response.body" and not self.flow.write_paused and not self.disconnected:
                self._send_with_body(held, message)
                return
            if not self.disconnected:
                self.transport.write(held)
        elif message["type"] == "http.response.start" and not self.response_started:
            self.status = message["status"]
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if not self.disconnected:
                self._start(message)
            return
        await super().send(message)

    def _start(self, message: Any) -> None:
        """Uvicorn's handling of ``http.response.start``, keeping the head when a body of declared length follows.
        The server's own default headers are not matched against the header-syntax patterns each time."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        content = [STATUS_LINE[status]]
        close = False
        for name, value in self.default_headers:
            if name == b"connection" and b"close" in value.lower():  # a draining worker's
                self.keep_alive = False
                close = True
            content.extend((name, b": ", value, b"\r\n"))
        id_header = self.id_header
        for name, value in message.get("headers", ()):
            if HEADER_RE.search(name):
                raise RuntimeError("Invalid HTTP header name.")
            if HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header value.")
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                close = True
            elif id_header is not None and name == id_header[0]:
                id_header = None  # the app set its own: keep it
            content.extend((name, b": ", value, b"\r\n"))
        if id_header is not None:
            content.extend((id_header[0], b": ", id_header[1], b"\r\n"))
        if not self.keep_alive and not close:
            content.append(b"connection: close\r\n")
        head_request = self.scope["method"] == "HEAD"
        if self.chunked_encoding is None and not head_request and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        if self.chunked_encoding is False and not head_request:
            self._held = b"".join(content)  # a body of declared length follows
        else:
            # A chunked response may be slow to send its first chunk (an event stream) and a HEAD response
            # sends no body at all: their heads leave now.
            self.transport.write(b"".join(content))

    def _send_with_body(self, head: bytes, message: Any) -> None:
        """Uvicorn's handling of a body message with a declared length, writing the held head with it."""
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        size = len(body)
        if size > self.expected_content_length:
            self.transport.write(head)
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= size
        if size <= COPY_LIMIT:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    async def run_asgi(self, app: Any) -> None:
        # Uvicorn's, except that a head still held when the app fails or returns mid-response is sent before the
        # connection closes, as Uvicorn would have sent it.
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if not self.body_timed_out:
                self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self._close()
        else:
            if result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                self._close()
            elif not self.response_started and not self.disconnected:
                self.logger.error("ASGI callable returned without starting response.")
                await self.send_500_response()
            elif not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self._close()
        finally:
            self.on_response = _nothing

    def _close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.transport.write(held)
        self.transport.close()


def _nothing() -> None:
    pass


def _making(cycle_class: type[RequestResponseCycle], method: Any) -> Any:
    """Uvicorn's protocol method as it is, except that it makes a ``cycle_class`` where it makes a
    RequestResponseCycle: its own code, looking the class up in a copy of its module's namespace. (Changing the
    class of each cycle after the fact cost every request more than it saved: CPython then stops specializing
    attribute access on it.)"""
    namespace = {**method.__globals__, "RequestResponseCycle": cycle_class}
    return types.FunctionType(method.__code__, namespace, method.__name__, method.__defaults__, method.__closure__)


# Uvicorn's own, cycle and all, where its method no longer has the shape the copy relies on (internals.py warns).
_on_headers_complete = (
    _making(OneWriteCycle, HttpToolsProtocol.on_headers_complete)
    if cycle_replaceable()
    else HttpToolsProtocol.on_headers_complete
)


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a head over a limit."""


class HttpToolsOneWriteProtocol(ClientBounds, HttpToolsProtocol):
    limits = HeadLimits()
    # A head of at most this many bytes and fields is within every limit and is not checked further.
    _unchecked_bytes, _unchecked_fields = limits.unchecked
    _head_bytes = 0  # bytes of the reads that carried the current head: at least the head's size
    _refusal: tuple[int, bytes] | None = None

    @classmethod
    def with_limits(cls, limits: HeadLimits, body: BodyLimits | None = None) -> type[HttpToolsOneWriteProtocol]:
        unchecked_bytes, unchecked_fields = limits.unchecked
        attributes = {
            "limits": limits,
            "body_limits": body or BodyLimits(),
            "_unchecked_bytes": unchecked_bytes,
            "_unchecked_fields": unchecked_fields,
        }
        return type(cls.__name__, (cls,), attributes)

    # The per-request overrides below call the base class by name: in the hot path, super() costs more.

    # -- slow and idle clients (and ClientBounds)

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
        scope = self.scope
        # A head has begun and is not complete: Uvicorn sets the method when it is.
        if scope is not None and "method" not in scope:  # the rest of a head
            self._head_bytes += len(data)
            most = self.limits.head_bytes
            if most is not None and self._head_bytes > most:
                self._unset_keepalive_if_required()
                self._refuse_now(431, b"Request header fields too large")
                return
        else:  # a head beginning in this read is no larger than the read
            self._head_bytes = len(data)
        HttpToolsProtocol.data_received(self, data)
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # a body still to come: rare past the read of its head
            self._watch_body(cycle, len(data))
        # From a head's first byte, the whole head must arrive within HEADER_TIMEOUT, however it trickles in.
        # Armed only for a head still incomplete after the read that began it: nearly every head arrives whole.
        scope = self.scope
        if self._head_timer is None and self.limits.header_timeout and scope is not None and "method" not in scope:
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _check_head(self) -> None:
        """Gunicorn's limits, checked once the head is parsed. The reads that carried it bound its size, so a
        head smaller than every limit (nearly all) is not looked at; what a head may hold while it arrives is
        bounded by ``head_bytes`` in data_received."""
        limits = self.limits
        if limits.request_line and self._head_bytes > limits.request_line:
            # The request line is METHOD SP target SP HTTP/x.y: the target is all that can grow.
            if len(self.url) + len(self.parser.get_method()) + 10 > limits.request_line:
                self._refuse(414, b"Request line too long")
        if limits.fields and len(self.headers) > limits.fields:
            self._refuse(431, b"Too many request header fields")
        if limits.field_size and self._head_bytes > limits.field_size:
            if any(len(name) + len(value) + 2 > limits.field_size for name, value in self.headers):
                self._refuse(431, b"Request header field too large")

    def _refuse(self, status: int, reason: bytes) -> NoReturn:
        self._refusal = (status, reason)
        raise Refused  # httptools stops and raises a parser error, which Uvicorn answers with a 400 ...

    def send_400_response(self, msg: str) -> None:
        refusal, self._refusal = self._refusal, None  # ... which, for a head over a limit, is ours instead
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse_now(*refusal)

    # -- slow bodies (worker/body_timeout.py, and ClientBounds)

    def _body_timed_out(self) -> None:
        watch, self._body_watch = self._body_watch, None
        if watch is None or self.transport.is_closing():
            return
        cycle: OneWriteCycle = watch.cycle  # the cycles this protocol makes
        if cycle is not self.cycle or not cycle.more_body:
            return  # complete after all
        if cycle.response_complete:
            # Answered without its body, which is still arriving (or, complete, left the connection idle
            # without the keep-alive timer that each read of it disarmed): nothing more to say.
            self.transport.close()
            return
        # What Uvicorn does when the client leaves: the app's receive() gets http.disconnect, its sends are
        # dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        if not cycle.response_started and not self.pipeline:
            self._refuse_now(408, b"Request body not received in time")
            # The 408 is the response: the access log says so, and the app's failure to read is no error.
            cycle.response_started, cycle.status, cycle.body_timed_out = True, 408, True
        else:
            self.transport.close()

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._stop_head_timer()
        if self._head_bytes > self._unchecked_bytes or len(self.headers) > self._unchecked_fields:
            self._check_head()
        _on_headers_complete(self)
        if self.cycle is not None:  # None for a WebSocket upgrade: no cycle, never shed
            self.cycle.arrived = perf_counter()  # type: ignore[attr-defined]  # a OneWriteCycle (_making)
