"""One request and its response on the worker's httptools protocol (worker/http_protocol.py): Uvicorn's request
cycle, made and run for less, and sending a response's head and the start of its body in one write.

Uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the body when
it sends ``http.response.body``: two ``write()`` system calls and two TCP segments for every response, and the
client wakes twice. The ASGI spec lets a server hold the head until the first body message (Hypercorn, Daphne
and Granian do), and nearly every response sends both back to back, so the head waits for the body and both
leave together. Measured here on the docs app's ``/async`` (2 workers, wrk -c64): 5-12 % more requests/s.

Only a response that declares its length is held. A streaming response without one (chunked: server-sent
events, long polls) has its head sent at once, so its client sees the headers before the first chunk however
long that takes. Nor is the head of a HEAD response: no body follows it.

Every line here runs for every request, and is measured in instructions (``python -m bench.inprocess
--instructions``). Uvicorn's cycle takes eleven keyword arguments and an ``asyncio.Event`` per request; this one
takes three arguments, keeps Uvicorn's defaults on the class, and makes an event only for a ``receive()`` that
has to wait (an app reading a body still arriving, or listening for the client to leave).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

from fastlaunch.request_id import HEADER

if TYPE_CHECKING:
    from fastlaunch.worker.middleware import ObservabilityMiddleware

# Above this a body is handed to the transport next to the head (one writev) rather than copied onto it.
COPY_LIMIT = 16 * 1024


class _NoWaiter:
    """A cycle's ``message_event`` until its app waits in ``receive()``: what arrives meanwhile is noted in
    ``pending`` (and Uvicorn's own code, which sets the event on a disconnect or a completed response, finds
    nothing to wake)."""

    def set(self) -> None:
        pass


NO_WAITER: Any = _NoWaiter()


class _Done(tuple):  # type: ignore[type-arg]
    """An awaitable that is already done (awaiting it yields nothing and gives None), all in C."""

    __await__ = tuple.__iter__


DONE = cast("Awaitable[None]", _Done())


class OneWriteCycle(RequestResponseCycle):
    """Uvicorn's request cycle, holding a response's head until its first body message and writing both at once.

    The head is built as Uvicorn builds it; Uvicorn's own ``send`` handles what is not on the held path (streams,
    HEAD, further body messages). It also serves fastlaunch's middleware (worker/middleware.py), which would
    otherwise wrap ``send``: it records the status and adds ``id_line`` (the request id), unless the app set
    its own X-Request-ID. Uvicorn's access log is never written from here: the worker turns it off and logs in
    the middleware.
    """

    access_log = False
    logger = logging.getLogger("uvicorn.error")
    access_logger = logging.getLogger("uvicorn.access")
    chunked_encoding: bool | None
    message_event: Any
    pending: bool  # something arrived (body, its end) since the app last received
    _held: bytes | None
    status: int  # the response's, once started: the server answers 500 when the app raises before
    id_line: bytes  # the request id's line of the head (the middleware's), or nothing
    body_timed_out: bool  # answered 408 by BODY_TIMEOUT: what the app raises then (ClientDisconnect) is expected
    arrived: float  # perf_counter() when the head was parsed, under admission control (worker/admission.py)
    observed: ObservabilityMiddleware | None  # the worker's middleware, run inline (run_asgi)
    tasks: set[asyncio.Task[None]]  # the server's running requests (Uvicorn's shutdown waits for them)

    def __init__(self, scope: Any, protocol: Any, keep_alive: bool) -> None:
        # Every field an instance attribute, set in one order: CPython 3.11 specializes reads of those, not of
        # defaults found on the class.
        self.scope = scope
        self.transport = protocol.transport
        self.flow = protocol.flow
        self.default_headers = protocol.server_state.default_headers
        self.keep_alive = keep_alive
        self.on_response = protocol.on_response_complete
        self.tasks = protocol.tasks
        self.task: asyncio.Task[None] | None = None  # set by the protocol; dropped when it ends (no cycle left)
        self.disconnected = False
        self.waiting_for_100_continue = protocol.expect_100_continue
        self.body = b""  # type: ignore[assignment]  # bytes: appended to, rarely
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding = None
        self.expected_content_length = 0
        self.message_event = NO_WAITER
        self.pending = False
        self._held = None
        self.status = 500
        self.id_line = b""
        self.body_timed_out = False
        self.arrived = 0.0
        self.observed = None

    async def receive(self) -> Any:
        # Uvicorn's, waiting on an event only when nothing has arrived since the last call.
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            if not self.pending:
                event = self.message_event
                if event is NO_WAITER:
                    event = self.message_event = asyncio.Event()
                await event.wait()
                event.clear()
            self.pending = False
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = b""  # type: ignore[assignment]
        return message

    def send(self, message: Any) -> Awaitable[None]:  # type: ignore[override]  # awaitable, as ASGI asks
        # Not a coroutine function: a response that needs no waiting (nearly all) is written here and the app
        # awaits a finished awaitable, not a coroutine of ours (about 2,000 instructions each, twice a request).
        held = self._held
        if held is not None:
            if message["type"] == "http.response.body" and not self.flow.write_paused and not self.disconnected:
                self._held = None
                self._send_with_body(held, message)
                return DONE
        elif message["type"] == "http.response.start" and not self.response_started:
            self.status = message["status"]
            if not self.flow.write_paused and not self.disconnected:
                self._start(message)
                return DONE
        return self._send(message)

    async def _send(self, message: Any) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self.disconnected:
                self.transport.write(held)
        elif message["type"] == "http.response.start" and not self.response_started:
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if not self.disconnected:
                self._start(message)
            return
        await RequestResponseCycle.send(self, message)

    def _start(self, message: Any) -> None:
        """Uvicorn's handling of ``http.response.start``, keeping the head when a body of declared length follows.
        The server's default headers and the app's header list, each read once per distinct value (_defaults,
        _fields): a response like one sent before costs a look-up, not a pass over its headers."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        defaults = self.default_headers
        known = _DEFAULTS[0]  # one read: a server in another thread may replace it
        if known[0] is not defaults:
            known = _DEFAULTS[0] = (defaults, *_defaults(defaults))
        _, default_lines, close = known
        if close:  # a draining worker's
            self.keep_alive = False
        items = tuple(message.get("headers", ()))
        try:
            fields = _FIELDS[items]
        except (KeyError, TypeError):  # not seen, or not hashable (a bytearray value)
            fields = _fields(items)
        lines, length, chunked, close_asked, own_id = fields
        if close_asked:
            self.keep_alive = False
            close = True
        self.chunked_encoding = chunked
        self.expected_content_length = length
        content = [STATUS_LINE[status], default_lines, lines]
        if not own_id:  # the app set no X-Request-ID of its own
            content.append(self.id_line)
        if not self.keep_alive and not close:
            content.append(b"connection: close\r\n")
        head_request = self.scope["method"] == "HEAD"
        if chunked is None and not head_request and status not in (204, 304):
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
        size = len(body)
        if size > self.expected_content_length:
            self.transport.write(head)
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= size
        if size <= COPY_LIMIT:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))
        if not message.get("more_body", False):
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            if self.message_event is not NO_WAITER:  # the app waits in receive()
                self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    async def run_asgi(self, app: Any) -> None:
        # Uvicorn's, except that the worker's middleware runs inline when it is the app (one coroutine fewer per
        # request), and a head still held when the app fails or returns mid-response is sent before the
        # connection closes, as Uvicorn would have sent it.
        try:
            observed = self.observed
            if observed is not None:
                result: Any = await observed.serve(self.scope, self.receive, self.send, self)  # type: ignore[arg-type, func-returns-value]
            else:
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
            self.tasks.discard(self.task)
            self.task = None

    def _close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.transport.write(held)
        self.transport.close()


# The response header names and short values an app has sent, each checked against Uvicorn's header patterns once
# (a pattern search costs about 1,000 instructions, a look-up here a few dozen): name -> the name in lower case,
# and values such as a content type or a length. Past this many, further ones are checked every time.
_CHECKED_NAMES: dict[bytes, bytes] = {}
_CHECKED_VALUES: set[bytes] = set()
_MOST_CHECKED = 1024
_SHORT_VALUE = 64

# A response's header list as its head needs it, for the lists of short headers sent before (most responses of an
# app repeat a few: a content type and a length): (the header lines, the declared length, chunked_encoding
# (None: neither a length nor chunked), whether it asks to close the connection, whether it sets X-Request-ID).
# Emptied when full, so the lists sent now are the ones kept.
Fields = tuple[bytes, int, "bool | None", bool, bool]
_FIELDS: dict[tuple[Any, ...], Fields] = {}
_MOST_FIELDS = 512
_FEW_FIELDS = 16
# The server's default headers (a new list each second: the date), as lines, and whether they close.
_DEFAULTS: list[tuple[Any, bytes, bool]] = [(None, b"", False)]


def _defaults(default_headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
    close = False
    lines = []
    for name, value in default_headers:
        if name == b"connection" and b"close" in value.lower():  # a draining worker's
            close = True
        lines.append(b"%s: %s\r\n" % (name, value))
    return b"".join(lines), close


def _fields(items: tuple[Any, ...]) -> Fields:
    """Uvicorn's reading of a response's headers: each checked against the header syntax, the first length or
    chunked transfer encoding noted, a close asked for; remembered when every header is short bytes."""
    length = 0
    chunked: bool | None = None
    close = own_id = False
    remember = len(items) <= _FEW_FIELDS
    content: list[bytes] = []
    for name, value in items:
        try:
            name = _CHECKED_NAMES[name]
        except (KeyError, TypeError):
            name = _checked_name(name)
        try:
            known = value in _CHECKED_VALUES
        except TypeError:  # a bytearray: checked every time
            known = False
        if not known:
            _check_value(value)
        remember = remember and type(value) is bytes and len(value) <= _SHORT_VALUE
        if name == b"content-length" and chunked is None:
            length = int(value)
            chunked = False
        elif name == b"transfer-encoding" and value.lower() == b"chunked":
            length = 0
            chunked = True
        elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
            close = True
        elif name == HEADER:
            own_id = True
        content.extend((name, b": ", value, b"\r\n"))
    fields = (b"".join(content), length, chunked, close, own_id)
    if remember and all(type(item) is tuple and type(item[0]) is bytes for item in items):
        if len(_FIELDS) >= _MOST_FIELDS:
            _FIELDS.clear()
        _FIELDS[items] = fields
    return fields


def _checked_name(name: bytes) -> bytes:
    if HEADER_RE.search(name):
        raise RuntimeError("Invalid HTTP header name.")
    lowered = name.lower()
    if type(name) is bytes and len(_CHECKED_NAMES) < _MOST_CHECKED:
        _CHECKED_NAMES[name] = lowered
    return lowered


def _check_value(value: bytes) -> None:
    if HEADER_VALUE_RE.search(value):
        raise RuntimeError("Invalid HTTP header value.")
    if type(value) is bytes and len(value) <= _SHORT_VALUE and len(_CHECKED_VALUES) < _MOST_CHECKED:
        _CHECKED_VALUES.add(value)


def _nothing() -> None:
    pass
