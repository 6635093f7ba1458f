"""The pure-ASGI middleware the worker wraps around any app (FastAPI, Starlette, old or new, or bare ASGI):
request id, access log entry, metrics, and ``/metrics`` when it is served on the app's port.

Per request it does only what must happen there: look once over the headers for a request id or a trusted
proxy's forwarded headers (one set lookup each), take a fresh id when there is none and add it, and, when
observing, take the time, leave a tuple for the access-log thread and bump the metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable
from time import perf_counter, time
from typing import Any, Protocol, cast

from uvicorn.middleware.asgi2 import ASGI2Middleware

from fastlaunch.request_id import HEADER, REQUEST_ID, choose, head_line, ids
from fastlaunch.worker.access_log import AccessLog, Entry
from fastlaunch.worker.asgi import ASGIApp, Message, Receive, Scope, Send
from fastlaunch.worker.deadline import TIMED_OUT, TIMED_OUT_STATUS
from fastlaunch.worker.forwarded import SCHEMES, TrustedProxies
from fastlaunch.worker.metrics import RequestMetrics, render, route_template

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
        # X-Forwarded-For/-Proto from trusted proxies, applied in the same pass over the headers that finds the
        # request id (Uvicorn's proxy_headers layer, which the worker turns off, cost every request an ASGI call).
        self.proxies = TrustedProxies(forwarded_allow_ips) if forwarded_allow_ips is not None else None
        # Nothing to time or count per request: the request id alone, on the shortest path.
        self.id_only = access_log is None and metrics is None and not serve_metrics
        # The headers worth a look: the request id, and a trusted proxy's forwarded ones.
        self.read = frozenset((HEADER, FORWARDED_FOR, FORWARDED_PROTO) if self.proxies else (HEADER,))
        # Whether a layer inside (admission control, worker/admission.py) reads when each request arrived.
        self.reads_arrival = _reads_arrival(self.app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                REQUEST_ID.set(self._read_headers(scope)[0])
            await self.app(scope, receive, send)
            return
        response = _SendWithId(send)
        await self.serve(scope, receive, response.send, response)

    def serve(self, scope: Scope, receive: Receive, send: Send, response: ServerResponse) -> Awaitable[None]:
        """An HTTP request, whose ``response`` adds the request id to the head and records the status: the worker's
        own request cycle (worker/http_cycle.py, which calls this for every request) or, under another server,
        a wrapper around its ``send``. Not a coroutine function: with nothing to time or count, it hands back the
        app's own awaitable (a coroutine costs about 2,000 instructions)."""
        headers = scope["headers"]
        # One set lookup per header finds what needs reading: nearly every request has none of it.
        for name, _ in headers:
            if name in self.read:
                request_id, raw = self._read_headers(scope)
                response.id_line = head_line(raw)
                break
        else:  # a fresh id, added to the request's own list of headers and to the response's
            request_id, header, response.id_line = ids.next_id()  # read at each call: a fork replaces it
            headers.append(header)
        # Not reset afterwards: the server runs each request in its own task (its own context), and the
        # server's own "Exception in ASGI application" line, logged after we return, should carry the id.
        REQUEST_ID.set(request_id)
        if self.id_only:
            return self.app(scope, receive, send)
        return self._observed(scope, receive, send, response, request_id)

    async def _observed(
        self, scope: Scope, receive: Receive, send: Send, response: ServerResponse, request_id: str
    ) -> None:
        """The request, timed for the access log and counted in the metrics."""
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
            await app(scope, receive, send)
        finally:
            seconds = perf_counter() - start
            if TIMED_OUT in scope:  # REQUEST_TIMEOUT cut it: a 504, even where another response had started
                response.status = TIMED_OUT_STATUS
            if self.access_log is not None:
                self.access_log.put(_entry(scope, response.status, seconds, request_id))
            if metrics is not None:
                metrics.finished(method, route_template(self.app, scope), response.status, seconds)

    def _read_headers(self, scope: Scope) -> tuple[str, bytes]:
        """The request's id (as text and as bytes) from an incoming X-Request-ID; a trusted proxy's forwarded
        headers are applied to the scope."""
        incoming: bytes | None = None
        several = False
        proto = None
        forwarded_for: list[bytes] = []
        headers = scope["headers"]
        for name, value in headers:
            if name == HEADER:
                several = incoming is not None
                incoming = value
            elif name == FORWARDED_FOR:
                forwarded_for.append(value)
            elif name == FORWARDED_PROTO:
                proto = value
        if forwarded_for or proto is not None:
            self._apply_forwarded(scope, forwarded_for, proto)
        if incoming is None:
            request_id, raw = ids.next_pair()  # read at each call: a fork replaces it
            headers.append((HEADER, raw))
            return request_id, raw
        # One id per request, whatever the client sent: a single sane X-Request-ID is kept; several or a bad
        # one become a fresh id, and the app's headers then carry exactly that id (it saw the first of two
        # while the log had the last).
        request_id = choose(None if several else incoming)
        raw = request_id.encode("ascii")
        if several or incoming != raw:
            scope["headers"] = [*(h for h in headers if h[0] != HEADER), (HEADER, raw)]
        return request_id, raw

    def _apply_forwarded(self, scope: Scope, forwarded_for: list[bytes], proto: bytes | None) -> None:
        proxies = self.proxies
        peer = scope.get("client")
        if proxies is None or not proxies.trusts(peer[0] if peer else None):
            return
        if proto is not None:
            scheme = proto.decode("latin-1").strip().lower()
            if scheme in SCHEMES:
                scope["scheme"] = scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
        if forwarded_for:
            client = proxies.client(forwarded_for)
            if client is not None:
                scope["client"] = (client, 0)


class ServerResponse(Protocol):
    """What the middleware asks of the server's response: to carry the request id and tell the status."""

    status: int  # the response's, once started
    id_line: bytes  # the X-Request-ID line added to the head unless the app sets its own (request_id.head_line)


class _SendWithId:
    """A server's ``send`` (other than the worker's own protocol's), adding the request id header and noting the
    status."""

    __slots__ = ("_send", "id_line", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.id_line = b""
        self.status = 500  # unless the app starts a response: the server answers 500 when the app raises

    def send(self, message: Message) -> Awaitable[None]:
        # Not a coroutine function: it hands back the server's own awaitable, which saves every message a
        # coroutine of ours (about 2,000 instructions each).
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            for name, _ in headers:
                if len(name) == len(HEADER) and name.lower() == HEADER:  # the app set its own: keep it
                    break
            else:  # a new list and message: the app may reuse its own
                header = (HEADER, self.id_line[len(HEADER) + 2 : -2])
                message = {**message, "headers": [*headers, header]}
        return self._send(message)


def _reads_arrival(app: Any) -> bool:
    for _ in range(16):  # the worker's own layers, then the app's
        if app is None:
            break
        if getattr(app, "reads_arrival", False) is True:
            return True
        app = getattr(app, "app", None)
    return False


def _entry(scope: Scope, status: int, seconds: float, request_id: str) -> Entry:
    agent = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent = value
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
