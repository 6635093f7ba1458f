"""The HTTP/1.1 protocol the worker serves with: Uvicorn's httptools protocol, with the per-request path owned.

Every line of that path runs for every request, so it is measured in instructions (callgrind over
``bench.inprocess``'s in-memory connection). Where Uvicorn's protocol, per request, builds its scope, makes a
request cycle from eleven keyword arguments and an ``asyncio.Event``, arms a keep-alive timer and cancels it
again when the next request arrives, and registers a done-callback on the request's task, this protocol builds
the same scope, makes its cycle (worker/http_cycle.py) from three arguments, keeps one keep-alive timer per
connection (a request only notes when the connection went idle), and runs the worker's middleware inline.
Each response leaves in one write (worker/http_cycle.py says why).

The protocol also bounds what a client may hold: a connection that sends nothing is closed after the keep-alive
time, a request head must arrive within HEADER_TIMEOUT of its first byte, and a head over Gunicorn's
``limit_request_line`` / ``limit_request_fields`` / ``limit_request_field_size`` is refused (414/431) and its
connection closed. Uvicorn has none of these: idle and slowloris connections stayed open for ever, and a head
of any size was buffered. A body, too, must arrive in time (BODY_TIMEOUT, worker/body_timeout.py), whether the
app reads it or has already answered without it.
"""

from __future__ import annotations

import contextvars
import urllib.parse
from time import perf_counter
from typing import Any, NoReturn

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.client_bounds import ClientBounds
from fastlaunch.worker.head_limits import HeadLimits
from fastlaunch.worker.http_cycle import NO_WAITER, OneWriteCycle
from fastlaunch.worker.middleware import ObservabilityMiddleware

# The methods' names as text, without decoding them for every request.
_METHODS = {m.encode("ascii"): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


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

    _idle_until: float | None = None  # loop time the idle connection is closed at; None while a request runs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        # The worker's middleware, which the cycle runs without a coroutine of its own (worker/http_cycle.py).
        self._observed = app if isinstance(app, ObservabilityMiddleware) else None
        # Admission control reads when each request arrived; nothing else does.
        self._stamp_arrival = self._observed is None or self._observed.reads_arrival
        self._fresh_context = bool(getattr(self.config, "reset_contextvars", False))
        self._scope_base: dict[str, Any] = {}
        # Instance attributes, not class defaults, for what every request reads: CPython 3.11 specializes those.
        self._idle_until = None
        self._head_timer = None
        self._head_bytes = 0
        self._body_watch = None
        self._refusal = None
        self._read: bytes | None = None  # a read that began with a message's head (data_received)
        self._header_timeout = self.limits.header_timeout
        self._most_head_bytes = self.limits.head_bytes
        self._unchecked_bytes, self._unchecked_fields = self.limits.unchecked

    # -- slow and idle clients (and ClientBounds)

    def connection_made(self, transport: Any) -> None:
        ClientBounds.connection_made(self, transport)
        timer = self.timeout_keep_alive_task
        if timer is not None:
            self._idle_until = timer.when()
        # What Uvicorn puts in every request's scope on this connection, as the installed release puts it.
        HttpToolsProtocol.on_message_begin(self)
        self._scope_base = {k: v for k, v in self.scope.items() if k not in ("headers", "state")}
        self.scope = None  # type: ignore[assignment]  # no head begun

    def timeout_keep_alive_handler(self) -> None:
        # One timer per connection, not one per request: a response notes when the connection went idle, and the
        # timer, when it fires, closes the connection or waits for the rest of the idle time.
        self.timeout_keep_alive_task = None
        until = self._idle_until
        if until is None:
            return  # a request in progress: its response arms the timer again
        remaining = until - self.loop.time()
        if remaining > 0:
            self.timeout_keep_alive_task = self.loop.call_later(remaining, self.timeout_keep_alive_handler)
        elif not self.transport.is_closing():
            self.transport.close()

    def idle_since(self) -> float | None:
        """Loop time since which the connection has waited for a request (None while one runs): the draining
        worker tells an idle keep-alive connection from one that is about to send its next request."""
        until = self._idle_until
        return None if until is None else until - self.timeout_keep_alive

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_until = self.loop.time() + self.timeout_keep_alive
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

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

    # -- the request

    def data_received(self, data: bytes) -> None:
        scope = self.scope
        # A head has begun and is not complete: the method is set when it is.
        if scope is not None and "method" not in scope:  # the rest of a head
            self._head_bytes += len(data)
            most = self._most_head_bytes
            if most is not None and self._head_bytes > most:
                self._unset_keepalive_if_required()
                self._refuse_now(431, b"Request header fields too large")
                return
            self._read = None
        else:  # a head beginning in this read is no larger than the read
            self._head_bytes = len(data)
            # A read that begins a message (the first, or the last one is complete): its head's request line is
            # at its start, where on_headers_complete reads the version.
            cycle = self.cycle
            self._read = data if cycle is None or not cycle.more_body else None
        self._idle_until = None  # where Uvicorn cancels its keep-alive timer
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            elif hasattr(self, "_unsupported_upgrade_warning"):  # Uvicorn 0.30+
                self._unsupported_upgrade_warning()
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # a body still to come: rare past the read of its head
            self._watch_body(cycle, len(data))
        # From a head's first byte, the whole head must arrive within HEADER_TIMEOUT, however it trickles in.
        # Armed only for a head still incomplete after the read that began it: nearly every head arrives whole.
        scope = self.scope
        if self._head_timer is None and self._header_timeout and scope is not None and "method" not in scope:
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self.headers = headers = []  # type: list[tuple[bytes, bytes]]
        self.scope = {**self._scope_base, "headers": headers, "state": self.app_state.copy()}  # type: ignore[typeddict-item]

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
        # Uvicorn's, making this worker's cycle.
        parser = self.parser
        scope: Any = self.scope
        method = parser.get_method()
        read = self._read
        http_version = ""
        if read is not None:  # the first head of a read that began with it (data_received)
            self._read = None
            # METHOD SP target SP HTTP/1.1 CRLF: the version, unless the line is otherwise (then the parser says).
            # The line's only CRLF ends it, so these bytes can be nothing but its version.
            at = len(method) + len(self.url) + 2
            if read[at : at + 10] == b"HTTP/1.1\r\n":
                http_version = "1.1"
        if not http_version:  # asking the parser formats the version anew (about 2,300 instructions)
            http_version = parser.get_http_version()
        try:
            scope["method"] = _METHODS[method]
        except KeyError:
            scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket: no cycle
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root = self.root_path
        if root:
            path, raw_path = root + path, root.encode("ascii") + raw_path
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        cycle = self.cycle = OneWriteCycle(scope, self, http_version != "1.0" and parser.should_keep_alive())
        if self._stamp_arrival:
            cycle.arrived = perf_counter()
        if app is self._observed:
            cycle.observed = self._observed
        if existing is None or existing.response_complete:
            if self._fresh_context:
                self._start_asgi_task(cycle, app)
            else:  # _start_asgi_task's, one call fewer
                cycle.task = task = self.loop.create_task(cycle.run_asgi(app))
                self.tasks.add(task)
        else:  # pipelined: it waits for the response in progress
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if self._fresh_context:  # Uvicorn's reset_contextvars
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        # Uvicorn's shutdown waits for these (a task still running after its response: background work); the
        # cycle takes its task out when it ends, with no done-callback scheduled per request.
        cycle.task = task
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        cycle: Any = self.cycle
        if cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.pending = True
        if cycle.message_event is not NO_WAITER:  # the app waits in receive()
            cycle.message_event.set()

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        cycle: Any = self.cycle
        if cycle.response_complete:
            return
        cycle.more_body = False
        cycle.pending = True
        if cycle.message_event is not NO_WAITER:  # the app waits in receive()
            cycle.message_event.set()
