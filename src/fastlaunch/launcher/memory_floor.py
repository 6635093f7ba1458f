"""MAX_WORKER_MEMORY against what a worker holds once it has loaded the app: a cap below it would replace every
worker as soon as it boots, for ever (a 1M cap: 37 replacements in 15 s; ``auto`` sharing a 200 MiB limit
among 6 workers gave 21 MiB against 26 MiB measured: 53 in 14 s).

The master measures the first worker that reports it has booted (its USS, what the cap is compared with). A
cap set to a size below that stops the server with one line naming both figures; ``auto``'s share below it
gives one warning, and no worker is recycled by memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from fastlaunch.core.exceptions import ExitCode
from fastlaunch.core.memory import current_rss, unique_memory
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.recycling import auto_share
from fastlaunch.launcher.workers import MiB, WorkerPlan

log = logging.getLogger("fastlaunch")


class CapBelowBoot(Exception):
    """A fixed MAX_WORKER_MEMORY below a worker's size at boot: the server stops with ``exit_code``."""

    exit_code = int(ExitCode.MEMORY_CAP)


class MemoryFloor:
    """Checks the memory cap once, against the first booted worker it can measure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.pending = settings.max_worker_memory is not None

    def check(self, plan: WorkerPlan, workers: int, booted: Iterable[int]) -> bool | None:
        """Once a booted worker can be measured: False when ``auto``'s share is below its size (the caller
        then turns recycling by memory off), True when the cap is fine; None until then. ``booted``: the pids of
        the workers that reported their boot on the channel. Raises CapBelowBoot for a fixed cap below it."""
        if not self.pending:
            return None
        size = next((size for size in map(_size, booted) if size), 0)
        if not size:
            return None
        self.pending = False
        cap = self._settings.max_worker_memory
        source = self._settings.source("max_worker_memory").describe()
        if isinstance(cap, int):
            if cap < size:
                log.error(
                    "MAX_WORKER_MEMORY=%.0f MiB (%s) is below the %.0f MiB (USS) a worker holds once it has loaded "
                    "the app: every worker would be replaced as soon as it started. Raise it above %.0f MiB, or "
                    "set it to auto or off",
                    cap / MiB,
                    source,
                    size / MiB,
                    size / MiB,
                )
                raise CapBelowBoot
            return True
        share = auto_share(plan, workers, current_rss())
        if share is not None and share < size:
            log.warning(
                "MAX_WORKER_MEMORY=auto (%s): the share of the memory limit for each of %d workers, %.0f MiB, is "
                "below the %.0f MiB (USS) a worker holds once it has loaded the app; workers are not recycled by "
                "memory. Give the container more memory, run fewer workers (WEB_CONCURRENCY), or set a size",
                source,
                workers,
                share / MiB,
                size / MiB,
            )
            return False
        return True


def _size(pid: int) -> int:
    """The USS of a worker that is still there (0: gone). Read from /proc, which the kernel writes."""
    return unique_memory(pid) if Path(f"/proc/{pid}").is_dir() else 0
