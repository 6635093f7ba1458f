"""The event-loop watchdog on an event loop of the test's own, without a server: a blocked loop is reported with
the blocking line and the request, a healthy loop is silent and wakes the watching thread once per
LOOP_BLOCK_WARN, not once per check. The real-process tests (test_watchdog.py) show the same through
`fastlaunch run`."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from time import monotonic
from typing import Any

import pytest

from fastlaunch.worker.watchdog import LoopWatchdog

WARN = 0.5  # seconds; the loop beats every quarter of it


class Reports(logging.Handler):
    """The watchdog's log lines; ``seen`` is set at the first report of a stall in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if "so far" in record.getMessage():
            self.seen.set()


@pytest.fixture
def reports() -> Any:
    handler = Reports()
    logger = logging.getLogger("fastlaunch.worker")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def handler_that_blocks(seen: threading.Event) -> None:
    scope = {"type": "http", "method": "GET", "path": "/report"}  # read from this frame by the watchdog
    request_id = "blocker-3"
    assert scope and request_id
    seen.wait(30)  # blocks the loop until the watchdog has reported it (at most 30 s)


def watched(coroutine: Any, stalls: list[float]) -> LoopWatchdog:
    """Runs ``coroutine`` on a new loop under a watchdog whose app has started; returns the watchdog."""
    loop = asyncio.new_event_loop()
    watchdog: LoopWatchdog | None = None
    try:

        async def main() -> None:
            nonlocal watchdog
            watchdog = LoopWatchdog(asyncio.get_running_loop(), WARN, observe=stalls.append)
            watchdog.start()
            watchdog.started()
            await asyncio.sleep(WARN)  # a beat or two before the handler runs
            await coroutine
            await asyncio.sleep(WARN)  # the loop beats again: the stall's end is logged

        loop.run_until_complete(main())
    finally:
        if watchdog is not None:
            watchdog.stop()
        loop.close()
    assert watchdog is not None
    return watchdog


def test_a_blocked_loop_is_reported_with_its_stack_and_request(reports: Reports) -> None:
    stalls: list[float] = []
    watched(handler_that_blocks(reports.seen), stalls)

    assert reports.seen.is_set()
    report = next(line for line in reports.lines if "so far" in line)
    assert "in GET /report route=unmatched request_id=blocker-3" in report
    app_part = report[report.index("The app's code, innermost first:") :]
    first = app_part.splitlines()[1:3]
    assert first[0].strip().startswith(f'File "{__file__}", line') and first[0].endswith("in handler_that_blocks")
    assert first[1].strip().startswith("seen.wait(30)")
    ended = [line for line in reports.lines if re.search(r"was blocked for \d+\.\d+s \(GET /report ", line)]
    assert len(ended) == 1 and len(stalls) == 1 and stalls[0] >= WARN
    assert len(reports.lines) == 2  # once while it lasts, once when it ends


def test_a_healthy_loop_is_silent_and_seldom_looked_at(reports: Reports) -> None:
    async def busy() -> None:
        for _ in range(100):  # 2 s or more of a loop that runs every 20 ms
            await asyncio.sleep(0.02)

    stalls: list[float] = []
    start = monotonic()
    watchdog = watched(busy(), stalls)
    watched_for = monotonic() - start

    assert reports.lines == [] and stalls == []
    # One look per LOOP_BLOCK_WARN (a look every beat would be four times as many).
    assert 1 <= watchdog.wakeups <= watched_for / WARN + 1
