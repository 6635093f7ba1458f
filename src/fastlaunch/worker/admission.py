"""Admission control (OVERLOAD, MAX_CONCURRENCY): a request that would wait too long is answered at once with
``503`` and ``Retry-After``, before the app runs, instead of queueing until its client has given up.

Above capacity, every request a worker accepts waits behind the others in its event loop: all their latencies
grow together until clients time out, and the work done for them is wasted. So the decision is made on the
time a request has waited, not on a concurrency limit:

- ``OVERLOAD=auto`` sheds a request whose *queueing delay* exceeds ``QUEUE_TARGET`` once requests have been
  waiting over it for ``QUEUE_INTERVAL`` (CoDel's rule: a burst that drains is absorbed, a standing queue is
  shed). The delay runs from the request's head being parsed (the worker's own HTTP protocol stamps it,
  worker/http_protocol.py) to the app starting it, or, when a trusted proxy (FORWARDED_ALLOW_IPS) sends
  ``X-Request-Start``, from the time the proxy received it (which also covers the proxy's and the kernel's
  queues). It bounds waiting, not the app's own time: a handler slow on its database is not shed for being
  slow, only requests waiting behind a busy loop are. An adaptive concurrency limit (gradient or AIMD on
  latency) was not chosen: on one event loop concurrency is not what saturates (one CPU-bound handler holds
  the loop at concurrency 1; a thousand awaiting I/O cost little), and a latency gradient reads a slow
  dependency as overload.
- ``MAX_CONCURRENCY`` is a fixed bound on the HTTP requests one worker runs at once (probes excepted), for
  what the queueing delay does not see: a pool the app waits on (threads for ``def`` endpoints, database
  connections).

A batch of requests read in one loop iteration is stamped at once, so the delay is measured from when the
worker read a request, not from when the kernel queued it: without ``X-Request-Start`` the kernel's share is
bounded by one loop iteration, which shedding keeps short.

Probes (``/healthz``, ``/readyz``) are never shed, nor WebSockets or lifespan: a liveness probe timing out
under load gets a healthy container restarted, which makes the spike worse.
"""

from __future__ import annotations

from time import perf_counter, time
from typing import Any

from fastlaunch.worker.asgi import ASGIApp, Receive, Scope, Send
from fastlaunch.worker.forwarded import TrustedProxies

# A request that has waited this long in the worker is shed under OVERLOAD=auto. Small against a client's
# deadline (about a second) and against what users notice, large against a loop iteration at normal load
# (well under a millisecond per request), so a burst at normal load is not shed.
QUEUE_TARGET = 0.02
# ... once the queue has stayed over the target this long (CoDel's interval): a burst that drains sooner is
# absorbed, not shed; a standing queue is.
QUEUE_INTERVAL = 0.1
RETRY_AFTER = b"1"  # seconds: a retrying client spreads out rather than coming back at once
PROBES = frozenset({"/healthz", "/readyz"})
REQUEST_START = b"x-request-start"
SHED_BODY = b"Server overloaded, retry later (OVERLOAD)\n"
SHED_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(SHED_BODY)).encode()),
    (b"retry-after", RETRY_AFTER),
]


class ShedCounter:
    """``http_requests_shed_total{reason}`` (prometheus_client multiprocess mode, as worker/metrics.py)."""

    def __init__(self) -> None:
        from prometheus_client import Counter

        self._counter = Counter(
            "http_requests_shed",
            "Requests answered 503 before the app ran (OVERLOAD, MAX_CONCURRENCY).",
            ["reason"],
            registry=None,
        )
        self._children = {reason: self._counter.labels(reason) for reason in ("queue", "concurrency")}

    def inc(self, reason: str) -> None:
        self._children[reason].inc()


class AdmissionControl:
    """ASGI middleware inside the observability middleware, so a shed request is logged and counted as the
    503 it is."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        queue_target: float | None,
        max_concurrency: int = 0,
        forwarded_allow_ips: str | list[str] | None = None,
        counter: ShedCounter | None = None,
    ) -> None:
        self.app = app
        self.queue_target = queue_target
        # The worker's HTTP protocol stamps each request's arrival only for this (worker/http_protocol.py).
        self.reads_arrival = queue_target is not None
        self.max_concurrency = max_concurrency
        self.proxies = TrustedProxies(forwarded_allow_ips) if forwarded_allow_ips is not None else None
        self.counter = counter
        self.in_flight = 0
        # Since when the worker's queue has held requests waiting over the target, and when one last did.
        self._above_since: float | None = None
        self._last_above = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        reason = self._refusal(scope, send)
        if reason is not None:
            if self.counter is not None:
                self.counter.inc(reason)
            await send({"type": "http.response.start", "status": 503, "headers": SHED_HEADERS})
            await send({"type": "http.response.body", "body": SHED_BODY})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _refusal(self, scope: Scope, send: Send) -> str | None:
        """Why the request is shed, or None to admit it."""
        if self.max_concurrency and self.in_flight >= self.max_concurrency:
            return "concurrency"
        if self.queue_target is not None and self._standing_queue(self.queue_delay(scope, send)):
            return "queue"
        return None

    def _standing_queue(self, delay: float) -> bool:
        """Whether a request that waited ``delay`` is shed: it waited over the target, and requests have been
        waiting over it for at least QUEUE_INTERVAL. A request over the target proves the queue was over it
        from its arrival plus the target on; the episode ends after an interval with none over it."""
        target = self.queue_target
        if target is None or delay <= target:
            return False
        now = perf_counter()
        if self._above_since is None or now - self._last_above > QUEUE_INTERVAL:
            self._above_since = now - delay + target
        else:
            self._above_since = min(self._above_since, now - delay + target)
        self._last_above = now
        return now - self._above_since >= QUEUE_INTERVAL

    def queue_delay(self, scope: Scope, send: Send) -> float:
        """Seconds since the request arrived: at the worker (stamped by its HTTP protocol), or at a trusted
        proxy that says so, whichever is longer. 0 when neither is known (another HTTP protocol, no header)."""
        cycle = getattr(send, "__self__", None)
        arrived = getattr(cycle, "arrived", 0.0)
        delay = perf_counter() - arrived if arrived else 0.0
        if self.proxies is not None:
            for name, value in scope["headers"]:
                if name == REQUEST_START:
                    proxied = self._proxy_delay(value, cycle)
                    if proxied is not None and proxied > delay:
                        delay = proxied
                    break
        return delay

    def _proxy_delay(self, value: bytes, cycle: Any) -> float | None:
        transport = getattr(cycle, "transport", None)
        peer = transport.get_extra_info("peername") if transport is not None else None
        host = peer[0] if isinstance(peer, tuple | list) and peer else None
        if self.proxies is None or not self.proxies.trusts(host):
            return None
        started = request_start(value)
        if started is None:
            return None
        delay = time() - started
        # A proxy clock ahead of ours, or far behind it: nothing to learn from the header.
        return delay if 0.0 <= delay < 3600.0 else None


def request_start(value: bytes) -> float | None:
    """A proxy's ``X-Request-Start`` as seconds since the epoch: ``t=1700000000.123`` (nginx's ``$msec``),
    or in milliseconds (Heroku) or microseconds (``t=${msec}000``, New Relic's convention)."""
    text = value.decode("latin-1").strip()
    if text.startswith("t="):
        text = text[2:]
    try:
        number = float(text)
    except ValueError:
        return None
    if number != number or number <= 0:  # NaN
        return None
    if number > 1e14:
        return number / 1e6
    if number > 1e11:
        return number / 1e3
    return number
