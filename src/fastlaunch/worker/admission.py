"""Admission control (OVERLOAD, MAX_CONCURRENCY): a request that would wait too long is answered at once with
``503`` and ``Retry-After``, before the app runs, instead of queueing until its client has given up.

Above capacity a worker queues in two places, and ``OVERLOAD=auto`` watches both, since neither shows the other:

- **Before the app** (the event loop busy with other requests): the *queueing delay*, from the request's head
  being parsed (the worker's own HTTP protocol stamps it, worker/http_protocol.py) to the app starting it, or,
  when a trusted proxy (FORWARDED_ALLOW_IPS) sends ``X-Request-Start``, from the time the proxy received it.
  A request that waited over the target is shed once requests have been waiting over it for QUEUE_INTERVAL
  (CoDel's rule: a burst that drains is absorbed, a standing queue is shed). The target is twice the app's
  usual in-app latency (2 to 20 ms): a fixed 20 ms let the admitted of a CPU-bound endpoint (2 ms each) wait
  20 ms, 17x their latency at half load.
- **Inside the app** (a database pool, threads): the requests waiting for a connection have left the queue and
  the app has started them, so their wait is invisible to the queueing delay; with a pool of 5 per worker the
  example service collapsed under every server without a bound (goodput 0.3 of capacity at 2x), while a fixed
  bound of 4 held it at capacity. No fixed number fits every app and machine, so the bound adapts: a gradient
  limit on the requests in the app (worker/concurrency_limit.py) shrinks while their latency rises above its
  baseline and grows back while it does not.

  A request that finds the app at the limit waits for a place for at most the queue target counted from its
  arrival, and no more of them wait than a few times what the limit lets into the app (WAITING_PER_PLACE). A
  place freed goes to the oldest waiter while the line is short (a burst), and to the newest once more wait than
  the app has places (a standing line: adaptive LIFO, as in Facebook's "Fail at Scale"): every admitted request
  would otherwise have waited nearly the whole target, adding it to the admitted's latency, while the oldest,
  who are shed soon anyway, gain nothing from going first. A waiter still waiting at its target (a
  timer, so a hung app holds nobody longer) is shed, as is a request that finds the waiting line full. A hard
  bound shed the bursts of random arrivals even at half the capacity (1 % with a bound of 4 on the example
  service); a wait of a few milliseconds absorbs them.

A slow dependency that is not a shared pool (an external API answering slower) also raises the in-app latency
and so lowers the limit; the limit measures its baseline again every few seconds when the load does not confirm
it, so an app that stays slower is relearnt, and the limit never goes under a few requests per worker.

- ``MAX_CONCURRENCY`` is a fixed bound on the HTTP requests one worker runs at once (probes excepted), whatever
  OVERLOAD is; under OVERLOAD=auto it also caps the adaptive limit.

A batch of requests read in one loop iteration is stamped at once, so the delay is measured from when the
worker read a request, not from when the kernel queued it: without ``X-Request-Start`` the kernel's share is
bounded by one loop iteration, which shedding keeps short.

Probes (``/healthz``, ``/readyz`` and HEALTHCHECK_PATH) are never shed, nor WebSockets or lifespan: a liveness
probe timing out under load gets a healthy container restarted, which makes the spike worse. With OVERLOAD=off and no
MAX_CONCURRENCY this layer is not in the app stack at all (worker/app_stack.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from time import perf_counter, time
from typing import Any

from fastlaunch.worker.asgi import ASGIApp, Message, Receive, Scope, Send
from fastlaunch.worker.concurrency_limit import MAX_LIMIT, GradientLimit
from fastlaunch.worker.forwarded import TrustedProxies

# Under OVERLOAD=auto a request may wait in the worker about twice what the app takes to serve one, within these
# bounds, once the queue stands: long enough for a batch read in one loop iteration, short against the app's own
# latency, so the admitted keep theirs.
QUEUE_FLOOR = 0.002
QUEUE_TARGET = 0.02
# ... once requests have been waiting over it this long (CoDel's interval): a burst that drains sooner is
# absorbed, not shed; a standing queue is.
QUEUE_INTERVAL = 0.1
# Requests waiting for a place in the app, per place under the limit (the whole limit, also while a probe lets
# in fewer): the line is bounded, and each waiter's wait is bounded by the queue target. A line of one per place
# shed most of a closed-loop client's connections at once past a low limit, each coming straight back for
# another 503 (its worker spent itself shedding); four absorbed them, and under open-loop overload served more
# at no higher p99.
WAITING_PER_PLACE = 4
RETRY_AFTER = b"1"  # seconds: a retrying client spreads out rather than coming back at once
PROBES = frozenset({"/healthz", "/readyz"})
REQUEST_START = b"x-request-start"
SHED_BODY = b"Server overloaded, retry later (OVERLOAD)\n"
SHED_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(SHED_BODY)).encode()),
    (b"retry-after", RETRY_AFTER),
]
REASONS = ("queue", "limit", "concurrency")


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
        self._children = {reason: self._counter.labels(reason) for reason in REASONS}

    def inc(self, reason: str) -> None:
        self._children[reason].inc()


class AdmissionControl:
    """ASGI middleware inside the observability middleware, so a shed request is logged and counted as the
    503 it is."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        adaptive: bool,
        max_concurrency: int = 0,
        probes: frozenset[str] = PROBES,
        forwarded_allow_ips: str | list[str] | None = None,
        counter: ShedCounter | None = None,
        clock: Callable[[], float] = perf_counter,
        loop: Any = None,
    ) -> None:
        self.app = app
        self.adaptive = adaptive
        # The worker's HTTP protocol stamps each request's arrival only for this (worker/http_protocol.py).
        self.reads_arrival = adaptive
        self.max_concurrency = max_concurrency
        self.probes = probes
        self.limit = GradientLimit(max_limit=max_concurrency or MAX_LIMIT) if adaptive else None
        self.proxies = TrustedProxies(forwarded_allow_ips) if forwarded_allow_ips is not None else None
        self.counter = counter
        self.clock = clock
        self._loop = loop  # for the waiters' timers; the running loop unless given
        self.waiters: deque[asyncio.Future[bool]] = deque()  # for a place in the app, oldest first
        self.in_flight = 0  # until the app returns (MAX_CONCURRENCY)
        self.in_app = 0  # until the return, or until it streams (the adaptive limit)
        self.queue_target = QUEUE_TARGET  # until the app's latency is known, the most lenient
        # Since when the worker's queue has held requests waiting over the target, and when one last did.
        self._above_since: float | None = None
        self._last_above = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.probes:
            await self.app(scope, receive, send)
            return
        reason = self._refusal(scope, send)
        if reason == "wait":
            reason = await self._wait(scope, send)
        if reason is not None:
            if self.counter is not None:
                self.counter.inc(reason)
            await send({"type": "http.response.start", "status": 503, "headers": SHED_HEADERS})
            await send({"type": "http.response.body", "body": SHED_BODY})
            return
        self.in_flight += 1
        try:
            if self.limit is None:
                await self.app(scope, receive, send)
                return
            timer = _InApp(self, self.limit, send)
            try:
                await self.app(scope, receive, timer.send)
            finally:
                if timer.open:
                    timer.leave()
        finally:
            self.in_flight -= 1

    def _refusal(self, scope: Scope, send: Send) -> str | None:
        """Why the request is shed, "wait" for it to wait for a place in the app, or None to admit it (its place
        under the adaptive limit taken)."""
        if self.max_concurrency and self.in_flight >= self.max_concurrency:
            return "concurrency"
        if self.limit is None:
            return None
        delay = self.queue_delay(scope, send)
        if delay > self.queue_target and self._standing_queue(delay):
            return "queue"
        if self.in_app >= self.limit.allowed or self.waiters:
            return "wait"
        self.in_app += 1
        return None

    async def _wait(self, scope: Scope, send: Send) -> str | None:
        """Waits in line for a place in the app, for what is left of the queue target since the request arrived:
        None once a place is handed over (taken on its behalf), "limit" when shed."""
        assert self.limit is not None
        left = self.queue_target - self.queue_delay(scope, send)
        if left <= 0.0 or len(self.waiters) >= int(self.limit.limit) * WAITING_PER_PLACE:
            return "limit"
        running = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = running.create_future()
        self.waiters.append(waiter)
        timer = (self._loop or running).call_later(left, self._expire, waiter)
        try:
            return None if await waiter else "limit"
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # handed a place, then cancelled before taking it
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            self.waiters.remove(waiter)
            waiter.set_result(False)

    def release(self) -> None:
        """A place in the app freed: to a waiter, if any (hand_over)."""
        self.in_app -= 1
        self.hand_over()

    def hand_over(self) -> None:
        """The free places under the limit to the waiters: oldest first, newest first while more wait than the
        app has places (a standing line)."""
        assert self.limit is not None
        waiters = self.waiters
        while waiters and self.in_app < self.limit.allowed:
            waiter = waiters.pop() if len(waiters) > self.limit.allowed else waiters.popleft()
            if not waiter.done():
                self.in_app += 1
                waiter.set_result(True)

    def learnt(self) -> None:
        """The limit's baseline moved: how long a request may wait once the queue stands is twice the app's usual
        in-app latency, bounded."""
        baseline = self.limit.baseline if self.limit is not None else 0.0
        self.queue_target = max(QUEUE_FLOOR, min(QUEUE_TARGET, 2.0 * baseline))

    def _standing_queue(self, delay: float) -> bool:
        """Whether a request that waited ``delay``, over the target, is shed: requests have been
        waiting over it for at least QUEUE_INTERVAL (CoDel's rule: a burst that drains is absorbed, a standing
        queue is shed). A request over the target proves the queue was over it from its arrival plus the target
        on; the episode ends after an interval with none over it. (Not CoDel's "no request started within the
        target": the first request of each batch the loop reads starts at once, however long the others wait.)"""
        now = self.clock()
        over_since = now - delay + self.queue_target
        if self._above_since is None or now - self._last_above > QUEUE_INTERVAL:
            self._above_since = over_since
        else:
            self._above_since = min(self._above_since, over_since)
        self._last_above = now
        return now - self._above_since >= QUEUE_INTERVAL

    def queue_delay(self, scope: Scope, send: Send) -> float:
        """Seconds since the request arrived: at the worker (stamped by its HTTP protocol), or at a trusted
        proxy that says so, whichever is longer. 0 when neither is known (another HTTP protocol, no header)."""
        cycle = getattr(send, "__self__", None)
        arrived = getattr(cycle, "arrived", 0.0)
        delay = self.clock() - arrived if arrived else 0.0
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


class _InApp:
    """One admitted request's time in the app, up to the app's return: then its place under the adaptive limit is
    freed and its latency handed to the limit. A stream's place is freed sooner, once it streams (a response head
    without a length, or a body sent in parts): how long a stream lasts is its client's business, not a measure
    of the app's queue. Not at the response head for the rest: an app's teardown after it (a dependency giving
    its database connection back) is still work in the app, and holds what the next request would wait for."""

    __slots__ = ("control", "limit", "_send", "entered", "probed", "started", "open")

    def __init__(self, control: AdmissionControl, limit: GradientLimit, send: Send) -> None:
        self.control, self.limit, self._send = control, limit, send
        self.entered = control.in_app
        self.probed = limit.probing
        self.started = control.clock()
        self.open = True

    def leave(self) -> None:
        self.open = False
        control = self.control
        control.in_app -= 1
        now = control.clock()
        if self.limit.sample(now - self.started, self.entered, now, self.probed):
            control.learnt()
        if control.waiters:
            control.hand_over()

    def send(self, message: Message) -> Awaitable[None]:
        """Not a coroutine function: the inner ``send``'s own awaitable, without a frame of its own."""
        if self.open:
            if message["type"] == "http.response.start":
                for name, _ in message.get("headers", ()):
                    if name.lower() == b"content-length":
                        break
                else:
                    self.leave()
            elif message.get("more_body"):
                self.leave()
        return self._send(message)


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
