"""The pure-ASGI middleware the worker wraps around any app (FastAPI, Starlette, old or new, or bare ASGI):
request id, access log entry, metrics, and ``/metrics`` when it is served on the app's port.

Per request it does only what must happen there: read the headers once (request id, user agent, forwarded
headers from trusted proxies), add one, take the time, leave a tuple for the access-log thread and bump the
metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter, time
from typing import Any, cast

from uvicorn.middleware.asgi2 import ASGI2Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fastlaunch.request_id import HEADER, REQUEST_ID, choose
from fastlaunch.worker.access_log import AccessLog, Entry
from fastlaunch.worker.deadline import TIMED_OUT, TIMED_OUT_STATUS
from fastlaunch.worker.metrics import RequestMetrics, render, route_template

Message = MutableMapping[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_PATH = "/metrics"
FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: AccessLog | None = None,
        metrics: RequestMetrics | None = None,
        serve_metrics: bool = False,
        forwarded_allow_ips: str | list[str] | None = None,
    ) -> None:
        # Uvicorn adapts an ASGI2 app only when it is the app it is given; behind this (ASGI3) middleware it
        # would call it as ASGI3 and fail every request, so the adaptation happens here first.
        self.app = asgi3(app)
        self.access_log = access_log
        self.metrics = metrics
        self.serve_metrics = serve_metrics
        # X-Forwarded-For/-Proto from trusted proxies, applied by Uvicorn's own middleware but only to a
        # request that carries them: this middleware reads the headers anyway, and Uvicorn's proxy_headers
        # layer (which the worker turns off) put every request through one more ASGI call (~3 us).
        self.forwarded: ASGIApp | None = None
        if forwarded_allow_ips is not None:
            self.forwarded = cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, _nothing), forwarded_allow_ips))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
            return
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if self.forwarded is not None and (FORWARDED_FOR in headers or FORWARDED_PROTO in headers):
            await self.forwarded(scope, receive, send)
        REQUEST_ID.set(choose(headers.get(HEADER)))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming, agent = await self._read_headers(scope, receive, send)
        request_id = choose(incoming)
        # Not reset afterwards: the server runs each request in its own task (its own context), and the
        # server's own "Exception in ASGI application" line, logged after we return, should carry the id.
        REQUEST_ID.set(request_id)
        response = _Response(send, (HEADER, request_id.encode("ascii")))
        metrics = self.metrics
        app = self.app
        if self.serve_metrics and scope["path"] == METRICS_PATH:
            metrics = None  # scrapes are logged but not counted: the count is the app's traffic
            app = _metrics_endpoint
        method = ""
        if metrics is not None:
            method = metrics.method(scope)
            metrics.started(method)
        start = perf_counter()
        try:
            await app(scope, receive, response.send)
        finally:
            seconds = perf_counter() - start
            if TIMED_OUT in scope:  # REQUEST_TIMEOUT cut it: a 504, even where another response had started
                response.status = TIMED_OUT_STATUS
            if self.access_log is not None:
                self.access_log.put(_entry(scope, response.status, seconds, request_id, agent))
            if metrics is not None:
                metrics.finished(method, route_template(self.app, scope), response.status, seconds)

    async def _read_headers(self, scope: Scope, receive: Receive, send: Send) -> tuple[bytes | None, bytes | None]:
        """One pass over the headers: the incoming request id and user agent; a trusted proxy's forwarded
        headers are applied to the scope."""
        incoming = agent = None
        forwarded = False
        for name, value in scope["headers"]:
            if name == HEADER:
                incoming = value
            elif name == b"user-agent":
                agent = value
            elif name == FORWARDED_FOR or name == FORWARDED_PROTO:
                forwarded = True
        if forwarded and self.forwarded is not None:
            # Sets scope["client"] and ["scheme"], then returns without calling on.
            await self.forwarded(scope, receive, send)
        return incoming, agent


class _Response:
    """The app's ``send``, adding the request id header and noting the status."""

    __slots__ = ("_send", "_id_header", "status")

    def __init__(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        self._send = send
        self._id_header = id_header
        self.status = 500  # unless the app starts a response: the server answers 500 when the app raises

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            for name, _ in headers:
                if name.lower() == HEADER:  # the app set its own: keep it
                    break
            else:  # a new list and message: the app may reuse its own
                message = {**message, "headers": [*headers, self._id_header]}
        await self._send(message)


def _entry(scope: Scope, status: int, seconds: float, request_id: str, agent: bytes | None) -> Entry:
    return Entry(
        scope.get("method", "-"),
        scope.get("raw_path"),
        scope["path"],
        scope.get("query_string", b""),
        scope.get("client"),
        scope.get("http_version", "1.1"),
        status,
        seconds,
        time(),
        request_id,
        agent,
    )


# Uvicorn's test: asyncio's before 3.14 also recognises functions marked as coroutine functions.
_iscoroutinefunction = inspect.iscoroutinefunction if sys.version_info >= (3, 14) else asyncio.iscoroutinefunction


def asgi3(app: Any) -> ASGIApp:
    """The app as ASGI3, telling the interfaces apart as Uvicorn does (uvicorn.config.Config.load)."""
    if inspect.isclass(app):
        use_asgi3 = hasattr(app, "__await__")
    elif inspect.isfunction(app):
        use_asgi3 = _iscoroutinefunction(app)
    else:
        use_asgi3 = _iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004
    return cast(ASGIApp, app if use_asgi3 else ASGI2Middleware(app))


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def _metrics_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, b"Method Not Allowed\n", b"text/plain; charset=utf-8")
        return
    # Reading every worker's file is blocking I/O: keep it off the event loop.
    body, content_type = await asyncio.get_running_loop().run_in_executor(None, render)
    await _respond(send, 200, body if scope["method"] == "GET" else b"", content_type.encode("latin-1"))


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
