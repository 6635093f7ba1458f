"""REQUEST_TIMEOUT: a request still running past its deadline is cancelled.

Cancellation, not a kill: the app's ``finally`` blocks and ``async with`` exits run, then the client gets a
504 when no response has started, or its connection closed when one has. A streaming response (one without
``Content-Length``) is no longer timed once its head is sent: how long a stream, a server-sent event feed or
a long poll lasts is the app's business. WebSockets and lifespan pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastlaunch.worker.asgi import ASGIApp, Message, Receive, Scope, Send
from fastlaunch.worker.metrics import route_template

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
    """One timer for all requests, not one per request: a request notes its task and due time in a dict, and a
    sweep every ``tick`` seconds cancels the overdue ones. An ``asyncio.timeout`` per request cost about 15 µs
    of CPU per request in ``bench.inprocess``; this costs a dict entry. A request is cut between ``seconds``
    and ``seconds + tick`` after it began."""

    def __init__(self, app: ASGIApp, seconds: float, *, counter: TimeoutCounter | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.counter = counter
        self.tick = min(1.0, max(0.05, seconds / 10))
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._body = f"Request timed out after {seconds:g}s (REQUEST_TIMEOUT)\n".encode()
        self._headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(self._body)).encode()),
        ]

    @property
    def routes(self) -> Any:
        # worker/metrics.route_template reads the app's routes (older Starlette): this wrapper is transparent.
        return getattr(self.app, "routes", ())

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        overdue = [task for task, due in self._due.items() if due <= now]
        for task in overdue:
            del self._due[task]
            self._expired.add(task)
            task.cancel("REQUEST_TIMEOUT")
        self._loop.call_later(self.tick, self._sweep)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - servers run each request in a task
            await self.app(scope, receive, send)
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            loop.call_later(self.tick, self._sweep)
        due = self._due
        due[task] = loop.time() + self.seconds
        started = finished = False

        async def send_timed(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                if not any(n.lower() == b"content-length" for n, _ in message.get("headers", ())):
                    due.pop(task, None)  # a stream (chunked): how long it lasts is the app's business
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else: the server shutting down, say
            task.uncancel()
        finally:
            due.pop(task, None)
        if task not in self._expired:
            return
        self._expired.discard(task)
        if finished:
            return  # the app caught the cancellation and answered: its response stands
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
