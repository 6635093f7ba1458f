"""MAX_WORKER_MEMORY inside a worker, and why a worker left (read by the master to log and count restarts).

The measure is USS (Private_Clean + Private_Dirty of /proc/self/smaps_rollup): the memory the worker's exit
frees, so the memory a replacement wins back. RSS would count the pages a preloading master shares with every
worker copy-on-write: each worker would seem to hold the whole model, and a cap that fits the container would
recycle them all. USS never exceeds RSS, so RSS (one read of /proc/self/statm) is checked first and the kernel's
page walk for USS runs only when RSS alone is over the cap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastlaunch.core.channel import MEMORY_CAP, WorkerSlot
from fastlaunch.core.memory import current_rss, unique_memory

log = logging.getLogger("fastlaunch")

# Often enough that a leak of a few MiB a request cannot run far past the cap; an RSS read costs microseconds.
CHECK_EVERY = 0.2


class MemoryGuard:
    """Watches one worker's memory and asks its server to stop (the way MAX_REQUESTS does) past the cap."""

    def __init__(self, cap: int | None, *, auto: bool) -> None:
        self._cap = cap
        self._auto = auto and cap is None
        self.tripped: int | None = None  # the USS that passed the cap

    @property
    def active(self) -> bool:
        return self._cap is not None or self._auto

    def cap(self) -> int | None:
        if self._cap is None and self._auto:
            # Published by the master when the plan is final: absent until then, or when there is no limit.
            self._cap = MEMORY_CAP.read()
        return self._cap

    def over(self) -> int | None:
        """The worker's USS when it is above the cap, else None."""
        cap = self.cap()
        if cap is None or current_rss() <= cap:
            return None
        uss = unique_memory()
        return uss if uss > cap else None

    async def watch(self, server: Any) -> None:
        """Until the server stops: past the cap, stop accepting and let in-flight requests finish."""
        while not server.should_exit:
            await asyncio.sleep(CHECK_EVERY)
            uss = self.over()
            if uss is not None:
                self.tripped = uss
                log.warning(
                    "Worker memory %.0f MiB (USS) is over MAX_WORKER_MEMORY %.0f MiB: it finishes its requests, "
                    "exits and is replaced",
                    uss / 2**20,
                    (self.cap() or 0) / 2**20,
                )
                server.should_exit = True
                return


def record_exit(slot: WorkerSlot | None, guard: MemoryGuard | None, server: Any) -> None:
    """Tells the master why this worker stops (it has only the exit status otherwise)."""
    if slot is None:
        return
    limit = getattr(server, "limit_max_requests", None) or getattr(server.config, "limit_max_requests", None)
    if guard is not None and guard.tripped is not None:
        reason = "memory"
    elif limit is not None and server.server_state.total_requests >= limit:
        reason = "max_requests"
    else:
        reason = "stopped"  # asked by a signal: reload, scale-down, shutdown, or the master is gone
    slot.report_exit(reason)
