"""The HTTP/1.1 protocol the worker serves with where httptools cannot be imported (no wheel for the platform):
Uvicorn's h11 protocol, with the bounds the httptools one has (worker/http_protocol.py).

Uvicorn's h11 protocol has none of them: a connection that sends nothing stays open, a head may trickle in for
ever, any head under h11's 16 KiB buffer is served whatever its request line or number of fields, and a body
may take as long as the client likes. This one, as the httptools protocol does:

- refuses a head over Gunicorn's ``limit_request_line`` (414), ``limit_request_fields`` or
  ``limit_request_field_size`` (431) and closes the connection; h11's buffer for an incomplete head is sized
  to the largest head those limits allow, as httptools' is bounded as bytes arrive;
- closes a connection that sends nothing after the keep-alive time, and answers 408 to a head not received
  within HEADER_TIMEOUT of its first byte;
- cuts a body that does not arrive in time (BODY_TIMEOUT, BODY_MIN_RATE: worker/body_timeout.py).

h11 parses each head once it is whole, so the limits are checked on the parsed request, before the app sees it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.client_bounds import ClientBounds
from fastlaunch.worker.head_limits import HeadLimits


class LimitedConnection(h11.Connection):
    """h11's server connection, refusing a request whose head is over a limit as it parses it: it raises the
    error Uvicorn answers with a 400, and the protocol sends the refusal recorded here instead."""

    limits = HeadLimits()
    refused: tuple[int, bytes] | None = None

    def next_event(self) -> Any:
        head = self.their_state is h11.IDLE
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if head and exc.error_status_hint == 431:  # the buffer sized in H11LimitsProtocol overflowed
                self.refused = (431, b"Request header fields too large")
            raise
        if type(event) is h11.Request:
            self._check(event)
        return event

    def _check(self, request: h11.Request) -> None:
        limits = self.limits
        # The request line is METHOD SP target SP HTTP/x.y.
        if limits.request_line and len(request.method) + len(request.target) + 10 > limits.request_line:
            self._refuse(414, b"Request line too long")
        if limits.fields and len(request.headers) > limits.fields:
            self._refuse(431, b"Too many request header fields")
        if limits.field_size and any(len(name) + len(value) + 2 > limits.field_size for name, value in request.headers):
            self._refuse(431, b"Request header field too large")

    def _refuse(self, status: int, reason: bytes) -> None:
        self.refused = (status, reason)
        raise h11.RemoteProtocolError(reason.decode(), error_status_hint=status)


# What a request cut by BODY_TIMEOUT logs instead of the app's failure to read its body (Starlette's
# ClientDisconnect): nothing, as the client's own disconnect would have been expected. Not registered with logging.
_QUIET = logging.Logger("fastlaunch.body_timeout")
_QUIET.disabled = True


class H11LimitsProtocol(ClientBounds, H11Protocol):
    conn: LimitedConnection

    @classmethod
    def with_limits(cls, limits: HeadLimits, body: BodyLimits | None = None) -> type[H11LimitsProtocol]:
        return type(cls.__name__, (cls,), {"limits": limits, "body_limits": body or BodyLimits()})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # h11 buffers an incomplete head up to this size (16 KiB by default): the largest head within the
        # limits, as httptools' protocol allows; a head over one limit is refused once parsed.
        self.conn = LimitedConnection(h11.SERVER, self.limits.head_bytes or sys.maxsize)
        self.conn.limits = self.limits

    # -- slow and idle clients (and ClientBounds)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._after_events(len(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()  # parses a pipelined head that waited behind the response
        self._after_events(0)

    def _after_events(self, size: int) -> None:
        """Arm the timer for what the connection now waits for: the rest of a head, the rest of a body, or the
        next request."""
        if self.transport.is_closing():
            return
        conn = self.conn
        state = conn.their_state
        if state is h11.IDLE:
            if len(conn._receive_buffer):  # a head has begun, and is not complete
                if self._head_timer is None and self.limits.header_timeout:
                    self._unset_keepalive_if_required()  # the head's own time governs now
                    self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
            elif self.timeout_keep_alive_task is None and self.timeout_keep_alive:
                # Idle: what arrived ended the body of a request answered without it, and Uvicorn disarmed the
                # keep-alive timer when it came.
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
            return
        self._stop_head_timer()
        if state is h11.SEND_BODY and size:
            self._watch_body(self.cycle, size)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE and len(self.conn._receive_buffer):
            self._refuse_now(408, b"Request head not received in time")

    # -- request head limits

    def send_400_response(self, msg: str) -> None:
        refused, self.conn.refused = self.conn.refused, None
        if refused is None:
            super().send_400_response(msg)
        else:
            self._refuse_now(*refused)

    # -- slow bodies (worker/body_timeout.py, and ClientBounds)

    def _body_timed_out(self) -> None:
        watch, self._body_watch = self._body_watch, None
        if watch is None or self.transport.is_closing():
            return
        cycle = watch.cycle
        if cycle is not self.cycle or self.conn.their_state is not h11.SEND_BODY:
            return  # complete after all
        if cycle.response_complete:  # answered without its body, which is still arriving
            self.transport.close()
            return
        # What Uvicorn does when the client leaves: the app's receive() gets http.disconnect, its sends are
        # dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        if not cycle.response_started:
            self._refuse_now(408, b"Request body not received in time")
            cycle.response_started, cycle.logger = True, _QUIET
        else:
            self.transport.close()
