"""The master's side of worker replacement: MAX_WORKER_MEMORY=auto's share of the memory limit, and the reason
each replaced worker left (logged, and counted in ``fastlaunch_worker_restarts_total{reason}`` with METRICS=on).
Both travel over the master-worker channel (``core/channel.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastlaunch.core.channel import MEMORY_CAP, attach, slot_of
from fastlaunch.core.memory import current_rss
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.workers import HEADROOM_FRACTION, MiB, WorkerPlan
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
    """MAX_WORKER_MEMORY=auto: once the worker count is final, tells the workers their cap (which they poll)."""
    if not options.max_worker_memory_auto:
        return
    share = auto_share(plan, workers, current_rss())
    if share is None:
        log.warning("MAX_WORKER_MEMORY=auto: there is no memory limit to share, so workers are not recycled by memory")
        return
    log.info("MAX_WORKER_MEMORY=auto: %.0f MiB per worker (USS)", share / MiB)
    MEMORY_CAP.publish(share)


def exit_reason(worker: Any) -> str:
    """Why a worker the master has reaped left."""
    if getattr(worker, "aborted", False):  # Gunicorn killed it for missing its heartbeat (TIMEOUT)
        return "timeout"
    slot = slot_of(worker)
    reason = slot.exit_reason() if slot is not None else None
    if slot is not None:
        slot.close()
    return reason or "crash"  # it never got to say: killed, or it crashed


def chain_channel(cfg: Any, *, metrics: bool, on_replaced: Callable[[str], None] | None = None) -> None:
    """Adds to Gunicorn's ``pre_fork`` and ``child_exit`` hooks (keeping any hook the user set): each worker's
    slot of the channel, made before its fork; and, once it is reaped, why it left, logged and, with
    METRICS=on, counted; ``on_replaced`` is told the reason of each worker about to be replaced."""
    previous_pre_fork, previous = cfg.pre_fork, cfg.child_exit

    def pre_fork(server: Any, worker: Any) -> None:
        attach(worker)
        previous_pre_fork(server, worker)

    def child_exit(server: Any, worker: Any) -> None:
        reason = exit_reason(worker)
        replaced = bool(server.LISTENERS)  # empty while shutting down: then workers exit, they are not replaced
        if replaced:
            log.info("Worker %s exited (reason: %s); a new worker replaces it", worker.pid, reason)
            if on_replaced is not None:
                on_replaced(reason)
        if metrics:
            from fastlaunch.launcher.metrics import worker_exited

            worker_exited(worker.pid, reason if replaced else None)
        previous(server, worker)

    cfg.set("pre_fork", pre_fork)
    cfg.set("child_exit", child_exit)
