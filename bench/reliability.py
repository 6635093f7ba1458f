"""Failed requests under load while the server is reloaded (SIGHUP), stopped (SIGTERM) or loses a worker
(SIGKILL), counted by the bounded load client in loadclient.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.loadclient import Connection, Tally, hammer, one
from bench.measure import free_port
from bench.plan import DOCS
from bench.procs import Server, ServerFailed, start_server, workers_of
from bench.servers import SERVERS, Launch

RELIABILITY_SERVERS = ("fastlaunch", "uvicorn", "granian")
SCENARIOS = ("hup", "term", "kill")
FAST = ["/"] * 6
SLOW = ["/sleep?s=1"] * 2  # in flight when the signal lands
MAX_REQUESTS = 500_000


@dataclass
class Reliability:
    server: str
    scenario: str
    ok: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    # hup: were all workers replaced (and how long it took), and did the server keep running?
    replaced: bool | None = None
    reload_s: float | None = None
    alive: bool | None = None
    # term: requests in flight at SIGTERM, how many of them failed, what came after, how long the drain took.
    in_flight: int = 0
    in_flight_failed: int = 0
    after_ok: int = 0
    after_failed: int = 0
    drain_s: float | None = None
    # kill: seconds from SIGKILL until a new worker answered.
    recovery_s: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def failed_while_serving(self) -> int:
        """Failures the server is answerable for: after a SIGTERM it has stopped, and the refused connections
        that follow are the load client's, not the server's."""
        return self.failed - (self.after_failed if self.scenario == "term" else 0)


def _tally_into(result: Reliability, tally: Tally) -> None:
    failed = tally.failed()
    result.ok, result.failed, result.failures = tally.ok(), len(failed), tally.kinds(failed)


@asynccontextmanager
async def under_load(port: int, paths: list[str]) -> AsyncIterator[Tally]:
    """Load running (one second of it already) while the body sends its signal; stopped on leaving."""
    tally, stop = Tally(), asyncio.Event()
    deadline = time.monotonic() + 60
    load = asyncio.create_task(hammer(port, paths, tally, stop=stop, deadline=deadline, max_requests=MAX_REQUESTS))
    try:
        await asyncio.sleep(1.0)
        yield tally
    finally:
        stop.set()
        await load


async def _hup(server: Server, result: Reliability, settle_s: float) -> None:
    before = set(workers_of(server.pid))
    async with under_load(server.port, FAST + SLOW) as tally:
        sent = time.monotonic()
        os.kill(server.pid, signal.SIGHUP)
        # Servers replace their workers one by one: wait (bounded) until none of the old ones is left.
        while time.monotonic() < sent + 30 and server.proc.poll() is None:
            after = set(workers_of(server.pid))
            if len(after) >= len(before) and not after & before:
                result.reload_s = time.monotonic() - sent
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle_s)
    result.alive = server.proc.poll() is None
    result.replaced = result.reload_s is not None
    _tally_into(result, tally)


async def _term(server: Server, result: Reliability, settle_s: float) -> None:
    async with under_load(server.port, FAST + SLOW) as tally:
        sent = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        while server.proc.poll() is None and time.monotonic() < sent + 30:
            await asyncio.sleep(0.01)
        if server.proc.poll() is not None:
            result.drain_s = time.monotonic() - sent
        await asyncio.sleep(min(settle_s, 0.5))
    _tally_into(result, tally)
    in_flight = [o for o in tally.outcomes if o.started < sent <= o.ended]
    result.in_flight = len(in_flight)
    result.in_flight_failed = sum(1 for o in in_flight if not 200 <= o.status < 300)
    result.after_ok = tally.ok(since=sent)
    result.after_failed = len(tally.failed(since=sent))


async def _kill(server: Server, result: Reliability, settle_s: float) -> None:
    before = workers_of(server.pid)
    if not before:
        result.error = "no worker processes found"
        return
    async with under_load(server.port, FAST) as tally:
        killed = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        # Fresh connections, so whichever worker accepts answers: the first unknown PID is the replacement.
        while time.monotonic() < killed + 30:
            conn = Connection(server.port)
            outcome = await one(conn, "/pid", timeout=2.0)
            await conn.close()
            if not outcome.error and outcome.status == 200 and json.loads(conn.last_body)["pid"] not in before:
                result.recovery_s = time.monotonic() - killed
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle_s / 2)
    _tally_into(result, tally)


RUNNERS = {"hup": _hup, "term": _term, "kill": _kill}


def run_reliability(server_name: str, scenario: str, *, workers: int, settle_s: float, logs: Path) -> Reliability:
    result = Reliability(server_name, scenario)
    port = free_port()
    args = SERVERS[server_name].command(Launch(DOCS.app, port, workers, access_log=False))
    log = logs / f"reliability-{server_name}-{scenario}.log"
    try:
        server = start_server(args, cwd=DOCS.cwd, env={}, port=port, ready_path="/", log=log)
    except ServerFailed as exc:
        result.error = f"server failed: {exc}"
        return result
    try:
        if server.settle(workers):
            asyncio.run(RUNNERS[scenario](server, result, settle_s))
        else:
            result.error = f"the server did not settle with {workers} idle workers within 30 s"
    finally:
        server.stop()
    return result
