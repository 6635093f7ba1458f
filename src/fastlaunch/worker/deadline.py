"""REQUEST_TIMEOUT: a request still running past its deadline is cancelled.

Cancellation, not a kill: the app's ``finally`` blocks and ``async with`` exits run, then the client gets a
504 when no response has started, or its connection closed when one has. A streaming response (one without
``Content-Length``) is no longer timed once its head is sent: how long a stream, a server-sent event feed or
a long poll lasts is the app's business. WebSockets and lifespan pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastlaunch.worker.metrics import route_template

Message = MutableMapping[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Set in the scope of a request cut by its deadline: the access log records it as a 504 even when the app
# had started another response (its client then saw the connection close).
TIMED_OUT = "fastlaunch.timed_out"
TIMED_OUT_STATUS = 504

log = logging.getLogger("fastlaunch.worker")


class TimeoutCounter:
    """``http_request_timeouts_total{route}`` (prometheus_client multiprocess mode, as worker/metrics.py)."""

    def __init__(self) -> None:
        from prometheus_client import Counter

        self._counter = Counter(
            "http_request_timeouts", "Requests cancelled by REQUEST_TIMEOUT.", ["route"], registry=None
        )

    def inc(self, route: str) -> None:
        self._counter.labels(route).inc()


class RequestDeadline:
    def __init__(self, app: ASGIApp, seconds: float, *, counter: TimeoutCounter | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.counter = counter
        self._body = f"Request timed out after {seconds:g}s (REQUEST_TIMEOUT)\n".encode()
        self._headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(self._body)).encode()),
        ]

    @property
    def routes(self) -> Any:
        # worker/metrics.route_template reads the app's routes (older Starlette): this wrapper is transparent.
        return getattr(self.app, "routes", ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False
        timer = asyncio.timeout(self.seconds)

        async def send_timed(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                if not any(n.lower() == b"content-length" for n, _ in message.get("headers", ())):
                    timer.reschedule(None)  # a stream (chunked): how long it lasts is the app's business
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            async with timer:
                await self.app(scope, receive, send_timed)
        except TimeoutError:
            if not timer.expired():
                raise  # the app's own timeout, not ours
        else:
            if not timer.expired() or finished:
                return  # in time, or the app caught the cancellation and answered: its response stands
        scope[TIMED_OUT] = True
        route = route_template(self.app, scope)
        if self.counter is not None:
            self.counter.inc(route)
        log.warning(
            "Request %s %s (route %s) cancelled after REQUEST_TIMEOUT=%gs; %s",
            scope.get("method", ""),
            scope.get("path", ""),
            route,
            self.seconds,
            "its response had started, so the connection is closed" if started else "answered 504",
        )
        if not started:
            await send({"type": "http.response.start", "status": TIMED_OUT_STATUS, "headers": self._headers})
            await send({"type": "http.response.body", "body": self._body})
        # Started: returning without completing the response makes the server close the connection.
