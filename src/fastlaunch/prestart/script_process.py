"""The prestart script's process: started in a process group of its own, and handed the SIGTERM or SIGINT the
launcher gets while it runs.

A container stop sends SIGTERM to the launcher (PID 1) alone. Left to Python's defaults, the launcher died at
once (or, on SIGINT, raised KeyboardInterrupt) while the script ran on to its end, unseen. Here the signal goes
to the script's whole group (its own children too), the launcher waits for it up to GRACEFUL_TIMEOUT, kills the
group once the script has ended or that time has passed, and says what happened; the start stops with 128 + the
signal's number, as a shell would report it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from fastlaunch.core.exceptions import PrestartError

FORWARDED = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("fastlaunch.prestart")


def signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} ({signum})"
    except ValueError:
        return str(signum)


def run_script_process(command: list[str], *, cwd: Path, env: Mapping[str, str], path: Path, grace: float) -> int:
    """Run the script and return its exit status (negative: killed by that signal). Raises PrestartError when
    the launcher was told to stop while it ran."""
    received: list[tuple[int, float]] = []  # the signals passed on, and when

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append((signum, time.monotonic()))
        _signal_group(proc.pid, signum)

    # Its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
    proc = subprocess.Popen(command, cwd=cwd, env=dict(env), process_group=0)
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    killed = False
    try:
        while True:
            try:
                status = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and not killed and time.monotonic() - received[0][1] > grace:
                name = signal_name(received[0][0])
                log.warning(
                    "Prestart script %s still runs %gs (GRACEFUL_TIMEOUT) after %s: killing it", path, grace, name
                )
                _signal_group(proc.pid, signal.SIGKILL)
                killed = True
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        for forwarded, handler in previous.items():
            signal.signal(forwarded, handler)
    if not received:
        return status
    # The start is abandoned: what the script left running in its group (a shell's background jobs ignore
    # SIGINT) goes with it.
    _signal_group(proc.pid, signal.SIGKILL)
    first = received[0][0]
    code = 128 + first
    if killed:
        outcome = f"it was killed after GRACEFUL_TIMEOUT={grace:g}s"
    elif status >= 0:
        outcome = f"it exited with code {status}"
    else:
        outcome = f"it was stopped by {signal_name(-status)}"
    raise PrestartError(
        f"fastlaunch received {signal_name(first)} while prestart script {path} ran: the signal was passed "
        f"to the script and {outcome}; the server was not started (exit code {code}: 128 + signal number).",
        exit_code=code,
    )


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:  # already gone
        pass
