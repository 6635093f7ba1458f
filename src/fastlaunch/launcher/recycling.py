"""The master's side of worker replacement: MAX_WORKER_MEMORY=auto's share of the memory limit, and the reason
each replaced worker left (logged, and counted in ``fastlaunch_worker_restarts_total{reason}`` with METRICS=on)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastlaunch.core.memory import current_rss
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.workers import HEADROOM_FRACTION, MiB, WorkerPlan
from fastlaunch.worker.memory_guard import CAP_FILE, exit_reason
from fastlaunch.worker.options import WorkerOptions

log = logging.getLogger("fastlaunch")


def memory_options(settings: Settings) -> dict[str, Any]:
    """The WorkerOptions fields for MAX_WORKER_MEMORY and PRELOAD."""
    cap = settings.max_worker_memory
    return {
        "max_worker_memory": cap if isinstance(cap, int) else None,
        "max_worker_memory_auto": cap == "auto",
        "preload": settings.preload,
    }


# Beyond the plan's headroom (page cache, request buffers): a worker is measured every 0.2 s and finishes its
# requests after passing its cap, so every worker may overshoot it at once by what it allocates meanwhile.
OVERSHOOT_FRACTION = 0.10


def auto_share(plan: WorkerPlan, workers: int, master: int) -> int | None:
    """One worker's share of the memory limit: what is left after the master (with a preloaded app, the
    pages every worker shares), the plan's headroom and a margin for overshoot, split evenly. None without a
    memory limit."""
    limit = plan.request.memory_limit
    if limit is None:
        return None
    margins = int(limit.value * (HEADROOM_FRACTION + OVERSHOOT_FRACTION))
    return max(0, limit.value - master - margins) // max(1, workers)


def publish_memory_cap(options: WorkerOptions, plan: WorkerPlan, workers: int) -> None:
    """MAX_WORKER_MEMORY=auto: once the worker count is final, tells the workers their cap (a file they poll)."""
    if not options.max_worker_memory_auto or not options.boot_dir:
        return
    share = auto_share(plan, workers, current_rss())
    if share is None:
        log.warning("MAX_WORKER_MEMORY=auto: there is no memory limit to share, so workers are not recycled by memory")
        return
    log.info("MAX_WORKER_MEMORY=auto: %.0f MiB per worker (USS)", share / MiB)
    tmp = Path(options.boot_dir) / f".{CAP_FILE}.tmp"
    tmp.write_text(str(share))
    tmp.rename(Path(options.boot_dir) / CAP_FILE)  # atomic: no worker reads half a number


def chain_child_exit(
    cfg: Any, boot_dir: str, *, metrics: bool, on_replaced: Callable[[str], None] | None = None
) -> None:
    """Adds to Gunicorn's ``child_exit`` hook (keeping any hook the user set): why the worker left, logged and,
    with METRICS=on, counted; ``on_replaced`` is told the reason of each worker about to be replaced."""
    previous = cfg.child_exit

    def child_exit(server: Any, worker: Any) -> None:
        reason = exit_reason(boot_dir, worker)
        replaced = bool(server.LISTENERS)  # empty while shutting down: then workers exit, they are not replaced
        if replaced:
            log.info("Worker %s exited (reason: %s); a new worker replaces it", worker.pid, reason)
            if on_replaced is not None:
                on_replaced(reason)
        if metrics:
            from fastlaunch.launcher.metrics import worker_exited

            worker_exited(worker.pid, reason if replaced else None)
        previous(server, worker)

    cfg.set("child_exit", child_exit)
