"""MAX_WORKER_MEMORY's guard (worker/memory_guard.py) in this process, measured on this process's own memory:
when it stops its server, what cap it reads, and the reason a stopping worker leaves for the master.
tests/worker/test_memory_guard.py keeps the real workers in a real memory cgroup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from uvicorn.server import ServerState

from fastlaunch.core.channel import MEMORY_CAP, WorkerSlot
from fastlaunch.core.memory import unique_memory
from fastlaunch.worker.memory_guard import MemoryGuard, record_exit

LOTS = 1 << 50  # more memory than any machine has


def server(limit_max_requests: int | None = None, served: int = 0) -> Any:
    """What the guard reads and sets of a Uvicorn server."""
    state = ServerState()
    state.total_requests = served
    return SimpleNamespace(
        should_exit=False, server_state=state, config=SimpleNamespace(limit_max_requests=limit_max_requests)
    )


@pytest.fixture
def published() -> Iterator[None]:
    """MEMORY_CAP is the process's (other tests publish it too): withdrawn before and after the test."""
    MEMORY_CAP.withdraw()
    yield
    MEMORY_CAP.withdraw()


def test_a_worker_over_its_cap_stops_its_server(caplog: pytest.LogCaptureFixture) -> None:
    guard = MemoryGuard(1 << 20, auto=False)
    target = server()
    with caplog.at_level(logging.WARNING, "fastlaunch"):
        asyncio.run(asyncio.wait_for(guard.watch(target), 10))
    assert target.should_exit
    assert guard.tripped is not None and guard.tripped > 1 << 20
    assert "is over MAX_WORKER_MEMORY 1 MiB: it finishes its requests, exits and is replaced" in caplog.text


def test_a_worker_under_its_cap_serves_on_until_its_server_stops() -> None:
    guard = MemoryGuard(LOTS, auto=False)
    target = server()

    async def scenario() -> None:
        watch = asyncio.create_task(guard.watch(target))
        await asyncio.sleep(0.5)  # a few checks
        assert not watch.done()
        target.should_exit = True  # stopped for another reason
        await asyncio.wait_for(watch, 10)

    asyncio.run(scenario())
    assert guard.tripped is None


def test_the_cap_counts_this_process_own_memory_not_its_shared_pages() -> None:
    uss = unique_memory()
    assert MemoryGuard(uss // 2, auto=False).over() is not None
    assert MemoryGuard(uss * 4, auto=False).over() is None


@pytest.mark.usefixtures("published")
def test_auto_waits_for_the_share_the_master_publishes_and_keeps_it() -> None:
    guard = MemoryGuard(None, auto=True)
    assert guard.active
    assert guard.cap() is None and guard.over() is None  # not published yet: no cap
    MEMORY_CAP.publish(1 << 20)
    assert guard.cap() == 1 << 20
    assert guard.over() is not None
    MEMORY_CAP.publish(LOTS)
    assert guard.cap() == 1 << 20  # read once: the plan is final when it is published


def test_a_set_cap_wins_over_auto_and_no_cap_is_inactive() -> None:
    assert MemoryGuard(5 << 20, auto=True).cap() == 5 << 20
    assert not MemoryGuard(None, auto=False).active


@pytest.mark.parametrize(
    ("tripped", "limit", "served", "reason"),
    [
        (True, None, 0, "memory"),
        (True, 10, 10, "memory"),
        (False, 10, 10, "max_requests"),
        (False, 10, 9, "stopped"),
        (False, None, 0, "stopped"),
    ],
)
def test_a_stopping_worker_tells_the_master_why(tripped: bool, limit: int | None, served: int, reason: str) -> None:
    guard = MemoryGuard(1, auto=False)
    if tripped:
        guard.tripped = 2
    slot = WorkerSlot()
    try:
        assert slot.exit_reason() is None
        record_exit(slot, guard, server(limit, served))
        assert slot.exit_reason() == reason
    finally:
        slot.close()


def test_a_worker_without_a_slot_reports_nothing() -> None:
    record_exit(None, MemoryGuard(1, auto=False), server())  # forked by another launcher: no error either
