"""What a worker tells the master through its slot (core/channel.py): booted, with its memory; serving; a boot
that failed on a file its WORKER_USER may not open. Why it stopped is memory_guard.record_exit's."""

from __future__ import annotations

import logging
import os

from fastlaunch.core import denied
from fastlaunch.core.channel import WorkerSlot, tell_denied
from fastlaunch.core.memory import current_rss, unique_memory
from fastlaunch.worker.draining_server import DrainingServer


def report_booted(slot: WorkerSlot | None, *, preload: bool) -> None:
    """Once the app is loaded: the master stages startup on the first worker's report and its memory."""
    if slot is not None:
        # Preloaded, the app's pages are the master's, shared: what this worker adds is its USS.
        slot.report_booted(unique_memory() if preload else current_rss())


def report_serving(slot: WorkerSlot | None) -> None:
    """Once the app's lifespan startup is done and it listens (the master's readiness line waits for every
    worker's)."""
    if slot is not None:
        slot.report_serving()


def watch_startup_errors(server: DrainingServer, denied_fd: int | None) -> denied.ErrorTail | None:
    """Under an unprivileged WORKER_USER (``denied_fd`` set): what Uvicorn logs while the app's lifespan starts
    (a failed startup is logged as text, its traceback included), kept until the app serves. Wraps the server's
    ``on_started``: set that first."""
    if denied_fd is None:
        return None
    tail = denied.ErrorTail()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(tail)
    report = server.on_started

    def started() -> None:
        logger.removeHandler(tail)
        if report is not None:
            report()

    server.on_started = started
    return tail


def report_denied_startup(startup_errors: denied.ErrorTail | None, denied_fd: int | None) -> None:
    """After a failed startup: the file it was denied, if that is why it failed."""
    if startup_errors is not None:
        found = denied.denied_path(startup_errors.text, os.getcwd())
        if found is not None:
            tell_denied(denied_fd, found)
