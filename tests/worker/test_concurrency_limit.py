"""OVERLOAD=auto's adaptive concurrency limit, in process: its arithmetic (worker/concurrency_limit.py) and the
admission layer that applies it (worker/admission.py) on a clock the test moves (tests/inprocess_kit.py's
ClockLoop), so a request's in-app latency and queueing delay are what the test says. No timings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from inprocess_kit import ClockLoop, settle

from fastlaunch.worker.admission import QUEUE_INTERVAL, WAITING_PER_PLACE, AdmissionControl
from fastlaunch.worker.app_stack import app_stack
from fastlaunch.worker.concurrency_limit import BASELINE_TTL, WINDOW, GradientLimit
from fastlaunch.worker.options import WorkerOptions


def feed(limit: GradientLimit, latency: float, windows: int, in_app: int | None = None) -> list[float]:
    """``windows`` full windows of answers at ``latency``, as many in the app at once as the limit lets in (or
    ``in_app``), answered back to back (no time passes: no probe); the limit after each."""
    seen = []
    for _ in range(windows):
        for _ in range(WINDOW):
            limit.sample(latency, in_app if in_app is not None else limit.allowed, 0.0, limit.probing)
        seen.append(limit.limit)
    return seen


def test_the_limit_shrinks_while_in_app_latency_rises_and_grows_back_when_it_falls() -> None:
    limit = GradientLimit(min_limit=2, max_limit=64, initial=16)
    grown = feed(limit, 0.001, 30)
    assert grown[-1] > 16
    high = limit.limit
    shrunk = feed(limit, 0.004, 10)  # four times the baseline: requests waiting on something in the app
    assert shrunk == sorted(shrunk, reverse=True)
    assert shrunk[-1] < high / 2
    low = limit.limit
    regrown = feed(limit, 0.001, 15)
    assert regrown == sorted(regrown)
    assert regrown[-1] > low * 1.5


def test_the_limit_stays_within_its_bounds() -> None:
    limit = GradientLimit(min_limit=3, max_limit=40, initial=10)
    seen = feed(limit, 0.001, 100) + feed(limit, 1.0, 100) + feed(limit, 0.001, 100) + feed(limit, 0.0, 10)
    assert all(3 <= value <= 40 for value in seen)
    assert max(seen) == 40
    assert min(seen) < 10


def test_the_limit_does_not_grow_on_windows_that_never_came_near_it() -> None:
    limit = GradientLimit(min_limit=2, max_limit=500, initial=16)
    assert feed(limit, 0.001, 50, in_app=2)[-1] == 16  # app-limited: no sign that more would be served
    assert feed(limit, 0.001, 5, in_app=16)[-1] > 16


def saturate(limit: GradientLimit, seconds: float, latency_of: Callable[[int], float], start: float = 0.0) -> float:
    """An app kept full, to the limit, for ``seconds`` of its clock: each answer's latency ``latency_of(n)`` with
    ``n`` in the app, ``n`` answers per such latency; returns the clock at the end."""
    now = start
    while now < start + seconds:
        in_app = limit.allowed
        probed = limit.probing
        latency = latency_of(in_app)
        now += latency / in_app
        limit.sample(latency, in_app, now, probed)
    return now


def pool(base: float, size: int) -> Callable[[int], float]:
    """The latency of an app that waits on a pool of ``size``: ``base`` up to it, in proportion past it."""
    return lambda in_app: base * max(1.0, in_app / size)


def test_the_limit_settles_near_a_pools_size_and_its_baseline_does_not_creep_while_it_causes_the_latency() -> None:
    limit = GradientLimit(min_limit=2, max_limit=500, initial=16)
    now = saturate(limit, 2.0, pool(0.001, 4))
    settled = limit.limit
    assert settled < 12  # from 16, towards the pool's 4 (latency doubles at 8, and TOLERANCE is 1.5)
    probes = limit.probes
    for _ in range(60):  # a minute of sustained overload; the baseline is measured again meanwhile
        now = saturate(limit, 1.0, pool(0.001, 4), start=now)
        assert limit.baseline == pytest.approx(0.001)
        assert limit.limit < settled * 1.1
    assert limit.probes - probes >= 60 / BASELINE_TTL - 1  # the probes ran, and found the app as fast as it was


def test_an_app_that_became_slower_is_relearnt_by_a_probe_at_a_quarter_of_the_limit() -> None:
    limit = GradientLimit(min_limit=2, max_limit=500, initial=16)
    now = saturate(limit, 2.0, pool(0.001, 16))
    before = limit.limit
    assert limit.baseline == pytest.approx(0.001)
    seen: set[int] = set()
    end = now + BASELINE_TTL + 2.0
    while now < end:  # three times slower at any concurrency (a slower database): the limit shrinks at first
        if limit.probing:
            seen.add(limit.allowed)
        now = saturate(limit, 0.01, pool(0.003, 16), start=now)
    assert seen and max(seen) <= max(1, int(before) // 4) + 1
    assert limit.baseline == pytest.approx(0.003)  # relearnt ...
    now = saturate(limit, 5.0, pool(0.003, 16), start=now)
    assert limit.limit > before * 0.8  # ... and the limit back where it was


class Cycle:
    """The face of the worker's request cycle the admission layer reads: when the request arrived, and ``send``
    as its bound method; it keeps what was sent."""

    def __init__(self, arrived: float) -> None:
        self.arrived = arrived
        self.messages: list[MutableMapping[str, Any]] = []

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.messages if m["type"] in ("http.response.start", "websocket.accept")]
        return starts[0].get("status", 101) if starts else None

    def header(self, name: bytes) -> bytes | None:
        headers = dict(self.messages[0].get("headers", [])) if self.messages else {}
        return headers.get(name)


class Held:
    """An app holding every request until the test lets it go (one, or all), writing down each one it started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.open = False  # every request answered at once

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        self.started.append(scope["rid"])
        gate = self.gates[scope["rid"]] = asyncio.Event()
        if self.open:
            gate.set()
        await gate.wait()
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Bench:
    """The admission layer under OVERLOAD=auto around a Held app, on a ClockLoop's clock."""

    def __init__(self, **options: Any) -> None:
        self.loop = ClockLoop()
        self.app = Held()
        self.control = AdmissionControl(self.app, adaptive=True, clock=self.loop.time, loop=self.loop, **options)
        self.cycles: dict[str, Cycle] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.count = 0

    async def send(self, path: str = "/", *, waited: float = 0.0, kind: str = "http") -> str:
        """A request that arrived ``waited`` seconds ago, handed to the layer; its id."""
        self.count += 1
        rid = f"{path}#{self.count}"
        cycle = self.cycles[rid] = Cycle(self.loop.time() - waited if waited else 0.0)
        scope = {"type": kind, "path": path, "headers": [], "rid": rid}
        self.tasks.append(asyncio.get_running_loop().create_task(self.control(scope, _receive, cycle.send)))
        await settle()
        return rid

    async def wave(self, requests: int, latency: float) -> None:
        """``requests`` in the app at once for ``latency`` seconds, then answered."""
        for _ in range(requests):
            await self.send()
        await self.loop.advance(latency)
        await self.finish()

    async def let_go(self, rid: str) -> None:
        self.app.gates[rid].set()
        await settle()

    async def finish(self) -> None:
        self.app.open = True
        for gate in self.app.gates.values():
            gate.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.app.open = False

    def shed(self) -> set[str]:
        return {rid for rid, cycle in self.cycles.items() if cycle.status == 503}


async def _receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_requests_past_a_limit_shrunk_by_in_app_latency_are_shed_and_probes_and_websockets_never_are() -> None:
    async def scenario() -> None:
        bench = Bench()
        limiter = bench.control.limit
        assert limiter is not None
        for _ in range(12):  # the app at its usual latency with 16 in it: the limit learns it and grows
            await bench.wave(16, 0.001)
        grown = limiter.limit
        assert grown > 16
        assert not bench.shed()
        for _ in range(32):  # the same load now waits in the app (a pool): four times as long
            await bench.wave(16, 0.004)
        shrunk = limiter.limit
        assert shrunk < grown / 2
        # The app full to the limit: one more waits for a place, and is shed once it has waited its queue target,
        # before the app starts it, with Retry-After.
        held = [await bench.send() for _ in range(limiter.allowed)]
        over = await bench.send()
        assert bench.cycles[over].status is None
        await bench.loop.advance(bench.control.queue_target)
        assert over in bench.shed()
        assert bench.cycles[over].header(b"retry-after") == b"1"
        assert over not in bench.app.started
        # Probes and WebSockets are never shed, the app full or not, however long they waited.
        spared = [
            await bench.send("/healthz", waited=5.0),
            await bench.send("/readyz", waited=5.0),
            await bench.send("/ws", waited=5.0, kind="websocket"),
        ]
        await bench.finish()
        assert [bench.cycles[rid].status for rid in held + spared] == [200] * len(held) + [200, 200, 101]
        for _ in range(80):  # the app fast again: the limit grows back
            await bench.wave(int(limiter.limit), 0.001)
        assert limiter.limit > shrunk * 1.3
        assert not set(bench.app.started) & bench.shed()  # nothing both started and shed

    run(scenario)


def test_once_the_queue_stands_a_request_may_wait_about_twice_the_apps_latency() -> None:
    async def scenario() -> None:
        bench = Bench()
        for _ in range(16):
            await bench.wave(4, 0.005)  # the app's usual latency: 5 ms, so a 10 ms wait is the target
        assert bench.control.queue_target == pytest.approx(0.01)
        burst = await bench.send(waited=0.05)  # over the target, but not for an interval yet: absorbed
        within = await bench.send(waited=0.008)  # within the target: admitted
        await bench.loop.advance(QUEUE_INTERVAL * 0.6)
        standing = await bench.send(waited=0.05)  # requests over the target for an interval now: shed
        await bench.loop.advance(QUEUE_INTERVAL * 1.5)
        again = await bench.send(waited=0.05)  # none over it for an interval: a new episode, absorbed
        too_long = await bench.send(waited=QUEUE_INTERVAL * 2)  # over it for longer than an interval itself: shed
        await bench.finish()
        assert bench.shed() == {standing, too_long}
        assert {burst, within, again} <= set(bench.app.started)
        assert not set(bench.app.started) & bench.shed()

    run(scenario)


def test_a_request_at_the_limit_waits_for_a_place_in_line_and_is_shed_past_its_target_or_a_full_line() -> None:
    async def scenario() -> None:
        bench = Bench()
        assert bench.control.limit is not None
        for _ in range(2):  # the first baseline measured (worker/concurrency_limit.py's first probe)
            await bench.wave(4, 0.001)
        allowed = bench.control.limit.allowed
        assert not bench.control.limit.probing
        assert not bench.shed()
        bench.app.started.clear()
        held = [await bench.send() for _ in range(allowed)]
        line = int(bench.control.limit.limit) * WAITING_PER_PLACE
        waiting = [await bench.send() for _ in range(line)]  # as many may wait as a few times the limit
        full = await bench.send()  # the line is full: shed at once
        assert bench.shed() == {full}
        assert bench.app.started == held
        # More wait than the app has places (a standing line): each place freed goes to the newest waiter.
        for n in range(3):
            await bench.let_go(held[n])
            assert bench.app.started == held + waiting[::-1][: n + 1]
        # A waiter gone (its client's task cancelled) leaves its place in line to the next.
        bench.tasks[-5].cancel()  # waiting[-4]
        await settle()
        await bench.let_go(held[3])
        assert bench.app.started == held + waiting[::-1][:3] + [waiting[-5]]
        # The rest wait up to the queue target from their arrival, then are shed.
        await bench.loop.advance(bench.control.queue_target * 0.9)
        assert bench.shed() == {full}
        await bench.loop.advance(bench.control.queue_target * 0.2)
        late = set(waiting[:-5])
        assert bench.shed() == {full} | late
        assert all(bench.cycles[rid].header(b"retry-after") == b"1" for rid in late)
        await bench.finish()
        assert not set(bench.app.started) & bench.shed()  # nothing both started and shed
        assert (bench.control.in_app, len(bench.control.waiters), bench.loop.pending()) == (0, 0, 0)

    run(scenario)


def test_a_short_line_is_served_oldest_first_and_a_standing_one_newest_first() -> None:
    """A burst that waits less than the app has places keeps its order; once more wait than that, the newest
    go first, so the admitted do not each wait out the older ones' target."""

    async def scenario() -> None:
        bench = Bench()
        assert bench.control.limit is not None
        for _ in range(2):  # the first baseline measured
            await bench.wave(4, 0.001)
        allowed = bench.control.limit.allowed
        assert allowed >= 2
        bench.app.started.clear()
        held = [await bench.send() for _ in range(allowed)]
        burst = [await bench.send() for _ in range(allowed)]  # as many as places: a short line
        for n in range(allowed):
            await bench.let_go(held[n])
        assert bench.app.started == held + burst  # in order
        standing = [await bench.send() for _ in range(allowed + 2)]  # more than places: it stands
        await bench.let_go(burst[0])
        await bench.let_go(burst[1])
        assert bench.app.started == held + burst + [standing[-1], standing[-2]]
        # Down to as many as places, the line is served in order again.
        await bench.let_go(burst[2] if allowed > 2 else standing[-1])
        assert bench.app.started[-1] == standing[0]
        await bench.finish()
        assert not bench.shed()
        assert (bench.control.in_app, len(bench.control.waiters)) == (0, 0)

    run(scenario)


def test_a_place_is_held_until_the_app_returns_or_its_response_streams() -> None:
    """Work after a response head (a dependency giving its connection back) holds the place; a stream does not."""

    async def scenario() -> None:
        loop = ClockLoop()
        after_head = asyncio.Event()
        seen: list[int] = []

        async def app(scope: dict[str, Any], receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
            length = [(b"content-length", b"2")] if scope["path"] == "/sized" else []
            await send({"type": "http.response.start", "status": 200, "headers": length})
            if scope["path"] == "/parts":
                await send({"type": "http.response.body", "body": b"o", "more_body": True})
            seen.append(control.in_app)  # after the head (and a first part): still in the app?
            await after_head.wait()
            await send({"type": "http.response.body", "body": b"ok"})

        control = AdmissionControl(app, adaptive=True, clock=loop.time, loop=loop)
        tasks = []
        for path in ("/sized", "/stream", "/parts"):
            scope: dict[str, Any] = {"type": "http", "path": path, "headers": [], "rid": path}
            tasks.append(asyncio.get_running_loop().create_task(control(scope, _receive, Cycle(0.0).send)))
            await settle()
        assert seen == [1, 1, 1]  # the sized answer holds its place past its head; the streams freed theirs
        assert control.in_app == 1
        after_head.set()
        await asyncio.gather(*tasks)
        assert control.in_app == 0

    run(scenario)


def test_max_concurrency_caps_the_adaptive_limit() -> None:
    async def scenario() -> None:
        bench = Bench(max_concurrency=6)
        assert bench.control.limit is not None
        for _ in range(40):
            await bench.wave(bench.control.limit.allowed, 0.001)
        assert bench.control.limit.limit <= 6
        held = [await bench.send() for _ in range(6)]
        over = await bench.send()
        await bench.finish()
        assert bench.shed() == {over}
        assert set(held) <= set(bench.app.started)

    run(scenario)


def test_overload_off_puts_nothing_in_the_request_path() -> None:
    def layers(stack: Any) -> list[type]:
        found = []
        while stack is not None:
            found.append(type(stack))
            stack = getattr(stack, "app", None)
        return found

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    assert AdmissionControl not in layers(app_stack(app, WorkerOptions(access_log=False), None))
    assert AdmissionControl in layers(app_stack(app, WorkerOptions(access_log=False, overload=True), None))
