"""The worker's signals beyond uvicorn-worker's: death with the master, a quick stop, and where a worker
stuck past Gunicorn's TIMEOUT was."""

from __future__ import annotations

import asyncio
import ctypes
import os
import queue
import signal
import sys
from collections.abc import Callable
from typing import Any

from uvicorn.server import Server

from fastlaunch.worker.watchdog import report_abort

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_stopped_while_booting = False


def hold_stops_while_booting(master_queue: object) -> None:
    """Run first in a worker just forked. Until it installs its own handlers, the worker has the master's, which
    only queue a signal for the master's loop: in the child nobody reads that queue, so a stop sent then was lost
    and the worker served on until the graceful timeout killed it. Remembers such a stop, from the child's copy
    of the master's queue (signals before this call) and from a handler (signals after it), for
    ``stopped_while_booting``."""

    def remember(signum: int, frame: object) -> None:
        global _stopped_while_booting
        _stopped_while_booting = True

    for signum in STOP_SIGNALS:
        signal.signal(signum, remember)
    if _queued_stop(master_queue):
        remember(signal.SIGTERM, None)


def _queued_stop(master_queue: object) -> bool:
    """Whether the child's copy of the master's signal queue (a list before Gunicorn 23, a SimpleQueue after)
    holds a stop; reading it empties only the child's copy."""
    if isinstance(master_queue, list):
        return any(signum in STOP_SIGNALS for signum in master_queue)
    if isinstance(master_queue, queue.SimpleQueue):
        queued = []
        while not master_queue.empty():
            queued.append(master_queue.get_nowait())
        return any(signum in STOP_SIGNALS for signum in queued)
    return False


def stopped_while_booting() -> bool:
    """Whether the master asked this worker to stop before the worker's own handlers were in place."""
    return _stopped_while_booting


def die_with_master(master_pid: int) -> None:
    """Asks the kernel for SIGTERM when the master dies (Linux); ``stop_if_orphaned`` covers other systems.
    Called once the worker has switched to WORKER_USER: a credential change clears the parent-death signal, so
    asked for any earlier it would be lost."""
    # uvicorn-worker never checks for its master: after a SIGKILL of the master (OOM killer, kill -9) the
    # orphans would keep the port forever and a supervisor's restart could never bind it.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != master_pid:  # the master died before prctl took effect: nobody will signal
        sys.exit(0)


def stop_if_orphaned(master_pid: int, log: Any) -> None:
    """On each of the worker's heartbeats: a worker whose master is gone stops as on SIGTERM."""
    if os.getppid() != master_pid:
        log.warning("Master %s is gone; worker %s exits", master_pid, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler: stop accepting, finish in-flight, exit


def report_aborts(app: Callable[[], Any]) -> None:
    """Gunicorn's TIMEOUT sends SIGABRT to a worker whose loop stopped: say where it was stuck (in ``app()``,
    the app once loaded), then die of it."""
    signal.signal(signal.SIGABRT, lambda signum, frame: report_abort(signum, frame, app()))


def install_quick_stop(server: Server, stopping: Callable[[], None]) -> None:
    """SIGQUIT stops ``server`` now: no drain, in-flight requests dropped. ``stopping`` is told first."""

    # Gunicorn sends SIGQUIT for a quick stop (SIGINT or SIGQUIT to the master). uvicorn-worker's handler only
    # cleared Gunicorn's `alive` flag, which the Uvicorn server never reads: workers served on until the
    # master's graceful timeout ran out and it SIGKILLed them.
    def quick_stop() -> None:
        stopping()
        server.should_exit = server.force_exit = True

    asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, quick_stop)
