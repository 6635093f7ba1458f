"""Readings of this machine's memory, shared by the launcher and the workers."""

from __future__ import annotations

import os

SHM = "/dev/shm"


def current_rss(pid: int | str = "self") -> int:
    """Resident set size in bytes, from /proc (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def shm_dir() -> str | None:
    """``/dev/shm`` when it can be written: files there are memory, so writing them never waits on a disk
    (a container's overlayfs can block a write for seconds). None where there is none."""
    return SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else None


def smaps_rollup(pid: int | str = "self") -> dict[str, int]:
    """The kernel's totals over a process's mappings (``Rss``, ``Pss``, ``Private_Clean``, ...) in bytes; empty
    where /proc/PID/smaps_rollup is missing (Linux before 4.14, other systems)."""
    totals: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    totals[key] = int(parts[0]) * 1024
    except (OSError, ValueError):
        return {}
    return totals


def unique_memory(pid: int | str = "self") -> int:
    """USS: the pages only this process holds, which its exit would free. It leaves out what a preloading
    master shares copy-on-write with its workers, which RSS counts in full in every worker. RSS where the
    kernel gives no smaps_rollup."""
    totals = smaps_rollup(pid)
    if "Private_Clean" in totals and "Private_Dirty" in totals:
        return totals["Private_Clean"] + totals["Private_Dirty"]
    return current_rss(pid)
