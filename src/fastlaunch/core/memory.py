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
