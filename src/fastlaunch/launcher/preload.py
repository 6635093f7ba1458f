"""PRELOAD=on: the one place the master imports the app (after prestart), so the workers it forks share the app's
memory copy-on-write and a replacement worker starts by a fork instead of an import.

Sharing lasts only while nothing writes to the pages. CPython's collector writes to every object it scans (the
``gc`` link fields in each object's header), so the master freezes its heap (``gc.freeze()``) right before the
forks: the app's objects go to a generation no collection walks (CPython docs, gc.freeze; gunicorn #1640).

What a fork cannot carry is checked right after the import and reported: threads (only the forking thread exists
in a child: their work stops, and a lock one held stays held), open sockets (a database or HTTP connection shared
by every worker interleaves their traffic), event loops (bound to the master), and CUDA (cannot be used in a
forked child).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.errors import AppImportError

from fastlaunch.core.memory import current_rss

log = logging.getLogger("fastlaunch")

FIX = "open it in the app's lifespan (startup) handler instead, which runs in each worker"


def _sockets() -> set[str]:
    found = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # no /proc: nothing to compare
        return set()
    for fd in names:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _open_event_loops() -> list[asyncio.AbstractEventLoop]:
    # gc.get_objects() sees every loop, set as current or merely kept in a module; run once, at startup.
    return [obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_closed()]


def _own_sockets(loop: asyncio.AbstractEventLoop) -> set[str]:
    """The socket pair a loop wakes itself with (asyncio's and uvloop's): reported as the loop, not as a connection."""
    found = set()
    for name in ("_ssock", "_csock"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{getattr(loop, name).fileno()}"))
        except (AttributeError, OSError, ValueError):
            continue
    return found


def fork_hazards(threads_before: set[int], sockets_before: set[str], loops_before: int) -> list[str]:
    """What the import left that the forked workers will not have, or will share when they must not."""
    hazards = []
    for thread in threading.enumerate():
        if thread.ident not in threads_before:
            hazards.append(
                f"thread {thread.name!r} ({type(thread).__name__}) started at import: it will not run "
                f"in the workers; {FIX}"
            )
    loops = _open_event_loops()
    opened = len(_sockets() - sockets_before - {sock for loop in loops for sock in _own_sockets(loop)})
    if opened:
        hazards.append(
            f"{opened} socket(s) opened at import (a database, cache or HTTP connection?): every worker "
            f"would share them and interleave its traffic; {FIX}"
        )
    if len(loops) > loops_before:
        hazards.append(
            f"{len(loops) - loops_before} asyncio event loop(s) created at import: they belong to the master; {FIX}"
        )
    cuda = sys.modules.get("torch.cuda")
    if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
        hazards.append(f"CUDA was initialised at import, and a forked worker cannot use it; {FIX}")
    return hazards


def preload(load: Callable[[], Any]) -> Any:
    """Imports the app in this process with ``load``, reports what a fork would break, then freezes the heap."""
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    sockets, loops = _sockets(), len(_open_event_loops())
    try:
        app = load()  # the app's own errors are logged by load(), from its first frame, and exit 3
    except AppImportError as exc:
        log.error("%s", exc)
        raise SystemExit(Arbiter.APP_LOAD_ERROR) from None
    hazards = fork_hazards(threads, sockets, loops)
    for hazard in hazards:
        log.warning("PRELOAD=on: %s", hazard)
    if hazards:
        log.warning("PRELOAD=on: fix the above, or set PRELOAD=off to import the app in each worker")
    gc.collect()  # import-time garbage goes now, not into the frozen set
    gc.freeze()
    log.info("PRELOAD=on: the master imported the app (RSS %.0f MiB); workers share it", current_rss() / 2**20)
    return app


def note_reload() -> None:
    """A SIGHUP with the app preloaded: Gunicorn replaces the workers, but they are forks of the same master."""
    log.warning(
        "PRELOAD=on: SIGHUP re-read the settings and replaces the workers, but the code stays what the master "
        "imported at start; to serve new code, restart fastlaunch (e.g. a rolling restart of the container)"
    )
