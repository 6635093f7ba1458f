"""A worker's serving, from the loaded app to its exit: uvicorn-worker's ``_serve`` with the draining server,
and what runs beside it (the quick stop, the loop watchdog, MAX_WORKER_MEMORY, the reports to the master)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config

from fastlaunch.core.channel import WorkerSlot
from fastlaunch.worker.draining_server import DrainingServer
from fastlaunch.worker.memory_guard import MemoryGuard, record_exit
from fastlaunch.worker.options import WorkerOptions
from fastlaunch.worker.reports import report_denied_startup, report_serving, watch_startup_errors
from fastlaunch.worker.signals import install_quick_stop
from fastlaunch.worker.watchdog import LoopWatchdog, stall_histogram

# Tasks the loop holds only weakly, kept for as long as the worker serves.
_held: set[asyncio.Task[None]] = set()


async def serve(
    config: Config,
    app: Any,
    listeners: list[Any],
    *,
    options: WorkerOptions,
    slot: WorkerSlot | None,
    stopping: Callable[[], None],
) -> None:
    """Serves ``app`` on Gunicorn's ``listeners`` until a signal or a limit stops it; exits with Gunicorn's boot
    error when the app's lifespan startup failed. ``stopping`` is told of a quick stop (SIGQUIT)."""
    config.app = app
    server = DrainingServer(config=config)
    install_quick_stop(server, stopping)
    watchdog = _start_watchdog(app, options)
    server.on_started = lambda: _on_started(watchdog, slot)
    startup_errors = watch_startup_errors(server, options.denied_fd)  # wraps on_started: set it first
    guard = _guard_memory(server, options)
    # The plain sockets inside Gunicorn's listeners: uvloop detaches a plain socket when it stops
    # serving, but closes anything else a second time, which Gunicorn's wrapper logged as EBADF.
    try:
        await server.serve(sockets=[getattr(listener, "sock", listener) for listener in listeners])
    except SystemExit:
        if not server.started:  # newer Uvicorn exits by itself when the lifespan startup fails
            report_denied_startup(startup_errors, options.denied_fd)
        raise
    if watchdog is not None:
        watchdog.stop()
    record_exit(slot, guard, server)
    if not server.started:
        report_denied_startup(startup_errors, options.denied_fd)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)


def _on_started(watchdog: LoopWatchdog | None, slot: WorkerSlot | None) -> None:
    if watchdog is not None:
        watchdog.started()  # stalls while the app started are expected: reported from now on
    report_serving(slot)


def _start_watchdog(app: Any, options: WorkerOptions) -> LoopWatchdog | None:
    """LOOP_BLOCK_WARN: a watchdog that names what blocked the event loop."""
    if not options.loop_block_warn:
        return None
    observe = stall_histogram() if options.metrics else None
    watchdog = LoopWatchdog(asyncio.get_running_loop(), options.loop_block_warn, app=app, observe=observe)
    watchdog.start()
    return watchdog


def _guard_memory(server: DrainingServer, options: WorkerOptions) -> MemoryGuard | None:
    """MAX_WORKER_MEMORY: a task that stops the server, as MAX_REQUESTS does, once the worker is too big."""
    guard = MemoryGuard(options.max_worker_memory, auto=options.max_worker_memory_auto)
    if not guard.active:
        return None
    task = asyncio.get_running_loop().create_task(guard.watch(server))
    _held.add(task)
    task.add_done_callback(_held.discard)
    return guard
