"""The event-loop watchdog: names the line that blocks a worker's event loop.

A callback on the loop notes the time every ``interval`` (a quarter of LOOP_BLOCK_WARN, at most 0.25 s); a
thread sleeps until the moment the loop, had it stopped beating, would have been blocked for LOOP_BLOCK_WARN
seconds, and looks then. While the loop is healthy that is one wake-up per LOOP_BLOCK_WARN, with nothing done
per request. When the loop has not run for LOOP_BLOCK_WARN seconds, the thread logs (once per stall) the loop
thread's Python stack, the app's own innermost frames first, with the request in flight; when the loop runs
again, the callback logs how long the stall lasted and records it in ``fastlaunch_event_loop_stall_seconds``.

While the app starts (its lifespan startup: a model loading, say) the loop may be blocked on purpose: stalls
are not reported then, only the longest one, in one line once the app serves.

The thread only runs when the blocking code lets go of the GIL (``time.sleep``, blocking I/O, and pure
Python code every few milliseconds do); a C extension that holds it for seconds stalls the watchdog too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from types import FrameType
from typing import Any

from fastlaunch.worker.metrics import route_template

log = logging.getLogger("fastlaunch.worker")

# Frames from these folders are not "the app's": the interpreter's and the virtualenv's (standard library,
# installed packages, console scripts) and fastlaunch itself.
_NOT_APP = tuple(
    {str(Path(p).resolve()) + os.sep for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}
    | {str(Path(__file__).resolve().parents[1]) + os.sep}
)


def is_app_frame(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return False
    return not str(Path(filename).resolve()).startswith(_NOT_APP)


def request_in_flight(frame: FrameType | None, app: Any = None) -> str:
    """'GET /items/7 route=/items/{item_id} request_id=...', read from the coroutine frames on the stack:
    the outermost frame holding an ASGI ``scope``, and the middleware's ``request_id``."""
    scope: dict[str, Any] | None = None
    request_id: str | None = None
    while frame is not None:
        local = frame.f_locals
        candidate = local.get("scope")
        if isinstance(candidate, dict) and candidate.get("type") in ("http", "websocket"):
            scope = candidate
            rid = local.get("request_id")
            if isinstance(rid, str):
                request_id = rid
        frame = frame.f_back
    if scope is None:
        return "no request in flight"
    method = scope.get("method", "WEBSOCKET")
    return f"{method} {scope.get('path', '')} route={route_template(app, scope)} request_id={request_id or '-'}"


def format_stack(frame: FrameType | None) -> str:
    """The app's innermost frames first (most recent first), then the stack from the event loop down (most
    recent call last): the frames above it, how the worker booted, say nothing about the stall."""
    # The import system's own frames (<frozen importlib._bootstrap>, a dozen per import) say nothing of the app.
    stack = traceback.StackSummary.from_list(
        [f for f in traceback.extract_stack(frame) if not f.filename.startswith("<frozen ")]
    )
    loop_level = max((i for i, f in enumerate(stack) if f"{os.sep}asyncio{os.sep}" in f.filename), default=-1)
    if loop_level + 1 < len(stack):
        stack = traceback.StackSummary.from_list(stack[loop_level + 1 :])
    app_frames = [f for f in reversed(stack) if is_app_frame(f.filename)]
    parts = []
    if app_frames:
        parts.append("The app's code, innermost first:\n" + "".join(traceback.format_list(app_frames)))
    parts.append("Stack from the event loop (most recent call last):\n" + "".join(traceback.format_list(stack)))
    return "".join(parts).rstrip("\n")


class LoopWatchdog:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        warn_after: float,
        *,
        app: Any = None,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self.loop = loop
        self.warn_after = warn_after
        # The loop notes the time this often: a stall's length, logged when it ends, is known to within it.
        self.interval = min(0.25, warn_after / 4)
        self.app = app
        self.observe = observe
        self.wakeups = 0  # of the watching thread, each a look at the loop's last beat
        self._last = monotonic()
        self._reported: str | None = None  # the request a reported stall was in
        self._starting = True  # until the app's lifespan startup is done (``started``)
        self._startup_stall = 0.0  # the longest stall meanwhile
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._watch, name="fastlaunch-loop-watchdog", daemon=True)

    def start(self) -> None:
        self._last = monotonic()
        self._handle = self.loop.call_later(self.interval, self._beat)
        self._thread.start()

    def started(self) -> None:
        """The app has started: from now on stalls are reported."""
        self._starting = False
        if self._startup_stall >= self.warn_after:
            log.info(
                "Event loop of worker %d was blocked for up to %.2fs while the app started (its lifespan startup); "
                "LOOP_BLOCK_WARN=%gs applies from now on",
                os.getpid(),
                self._startup_stall,
                self.warn_after,
            )

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()

    def _beat(self) -> None:
        now = monotonic()
        stalled = now - self._last - self.interval
        self._last = now
        if self._starting:
            self._startup_stall = max(self._startup_stall, stalled)
        elif stalled >= self.warn_after:
            where = self._reported or "request unknown: the loop ran again before the watchdog looked"
            log.warning("Event loop of worker %d was blocked for %.2fs (%s)", os.getpid(), stalled, where)
            if self.observe is not None:
                self.observe(stalled)
        self._reported = None
        self._handle = self.loop.call_later(self.interval, self._beat)

    def _watch(self) -> None:
        timeout = self.interval + self.warn_after
        while not self._stop.wait(timeout):
            self.wakeups += 1
            now = monotonic()
            # The moment the loop, beating no more, will have been blocked for warn_after: while it beats, the
            # thread sleeps until then, so a healthy loop costs one wake-up per warn_after.
            due = self._last + self.interval + self.warn_after
            if now < due:
                timeout = due - now
                continue
            timeout = self.warn_after  # blocked: reported once, looked at again while it lasts
            if self._reported is not None or self._starting:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            where = request_in_flight(frame, self.app)
            self._reported = where
            log.warning(
                "Event loop of worker %d blocked for %.2fs so far (LOOP_BLOCK_WARN=%gs), in %s. %s",
                os.getpid(),
                now - self._last - self.interval,
                self.warn_after,
                where,
                format_stack(frame),
            )


def stall_histogram() -> Callable[[float], None]:
    from prometheus_client import Histogram

    histogram = Histogram(
        "fastlaunch_event_loop_stall_seconds",
        "Event-loop stalls longer than LOOP_BLOCK_WARN, by how long the loop did not run.",
        buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, float("inf")),
        registry=None,
    )
    return histogram.observe


def report_abort(signum: int, frame: FrameType | None, app: Any = None) -> None:
    """SIGABRT from Gunicorn's TIMEOUT: log the stack the worker was stuck in, then die of it as before."""
    log.critical(
        "Worker %d stopped by Gunicorn's TIMEOUT (SIGABRT) in %s. %s",
        os.getpid(),
        request_in_flight(frame, app),
        format_stack(frame),
    )
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    signal.signal(signal.SIGABRT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGABRT)
