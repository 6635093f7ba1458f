"""OVERLOAD=auto's adaptive concurrency limit, in process: its arithmetic (worker/concurrency_limit.py) and the
admission layer that applies it (worker/admission.py) on a clock the test moves (tests/inprocess_kit.py's
ClockLoop), so a request's in-app latency and queueing delay are what the test says. No timings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from inprocess_kit import ClockLoop, settle

from fastlaunch.worker.admission import QUEUE_INTERVAL, AdmissionControl
from fastlaunch.worker.app_stack import app_stack
from fastlaunch.worker.concurrency_limit import WINDOW, GradientLimit
from fastlaunch.worker.options import WorkerOptions


def feed(limit: GradientLimit, latency: float, windows: int, in_app: int | None = None) -> list[float]:
    """``windows`` full windows of answers at ``latency``, as many in the app at once as the limit lets in (or
    ``in_app``); the limit after each."""
    seen = []
    for _ in range(windows):
        for _ in range(WINDOW):
            limit.sample(latency, in_app if in_app is not None else int(limit.limit))
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
    regrown = feed(limit, 0.001, 10)
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
    """An app holding every request until the test releases it, writing down each one it started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        self.started.append(scope["rid"])
        await self.release.wait()
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
        self.control = AdmissionControl(self.app, adaptive=True, clock=self.loop.time, **options)
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

    async def finish(self) -> None:
        self.app.release.set()
        await asyncio.gather(*self.tasks)
        self.tasks.clear()
        self.app.release = asyncio.Event()

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
        for _ in range(8):  # the app at its usual latency with 16 in it: the limit learns it and grows
            await bench.wave(16, 0.001)
        grown = limiter.limit
        assert grown > 16
        assert not bench.shed()
        for _ in range(16):  # the same load now waits in the app (a pool): four times as long
            await bench.wave(16, 0.004)
        shrunk = limiter.limit
        assert shrunk < grown / 2
        # The app full to the limit: one more is shed, before the app starts it, with Retry-After.
        held = [await bench.send() for _ in range(int(shrunk))]
        over = await bench.send()
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
        for _ in range(24):  # the app fast again: the limit grows back
            await bench.wave(int(limiter.limit), 0.001)
        assert limiter.limit > shrunk * 1.5
        assert not set(bench.app.started) & bench.shed()  # nothing both started and shed

    run(scenario)


def test_once_the_queue_stands_a_request_may_wait_about_twice_the_apps_latency() -> None:
    async def scenario() -> None:
        bench = Bench()
        for _ in range(4):
            await bench.wave(16, 0.005)  # the app's usual latency: 5 ms, so a 10 ms wait is the target
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


def test_max_concurrency_caps_the_adaptive_limit() -> None:
    async def scenario() -> None:
        bench = Bench(max_concurrency=6)
        assert bench.control.limit is not None
        for _ in range(10):
            await bench.wave(6, 0.001)
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
