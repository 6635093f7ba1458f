"""Runs a prestart step in a forked child process, so what they import stays out of the caller.

The database steps import SQLAlchemy, a driver and asyncio; in the Gunicorn master those would stay for the
server's whole life and be inherited by every worker it forks (29 MiB -> 58 MiB of master RSS on PostgreSQL).
A fork costs about a millisecond and re-imports nothing. The child's output streams to the caller's stdout and
stderr, which it shares; a FastlaunchError it raises comes back over a pipe and is raised again here, with its
message and exit code.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from fastlaunch.core import exceptions
from fastlaunch.core.exceptions import FastlaunchError, PrestartError
from fastlaunch.core.settings import Settings

Step = Callable[[Settings], None]  # a prestart step: applies itself or not, raises a FastlaunchError

# The child's exit status when a step raised something other than a FastlaunchError (a bug: traceback shown).
UNEXPECTED = 70
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _encode(exc: FastlaunchError) -> bytes:
    fields = {"type": type(exc).__name__, "message": exc.message, "problems": exc.problems, "hint": exc.hint}
    return json.dumps({**fields, "exit_code": exc.exit_code}).encode()


def _decode(raw: bytes) -> FastlaunchError:
    data = json.loads(raw)
    kind = getattr(exceptions, data["type"], None)
    if not (isinstance(kind, type) and issubclass(kind, FastlaunchError)):
        kind = FastlaunchError
    exc = kind.__new__(kind)
    FastlaunchError.__init__(exc, data["message"], problems=data["problems"], hint=data["hint"])
    exc.exit_code = int(data["exit_code"])
    return exc


def _flush() -> None:
    for handler in logging.getLogger().handlers + logging.getLogger("fastlaunch").handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()


def _child(step: Step, settings: Settings, report: int) -> int:
    for signum in FORWARDED:  # die of the signal the parent forwards, as the parent would
        signal.signal(signum, signal.SIG_DFL)
    gc.enable()  # off in the starting master (cli/entry.py); migrations may run long
    try:
        step(settings)
    except FastlaunchError as exc:
        os.write(report, _encode(exc))
        return 1
    except Exception:
        traceback.print_exc()
        return UNEXPECTED
    return 0


def run_in_child(step: Step, settings: Settings, what: str) -> None:
    """Run ``step`` in a forked child and wait for it; its failure is raised here. What the step imports
    (import it inside the step) stays in the child."""
    _flush()  # nothing buffered twice
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - measured by the tests through the processes, not by coverage
        code = UNEXPECTED
        try:
            os.close(read)
            code = _child(step, settings, write)
        finally:
            _flush()
            os._exit(code)  # never the parent's atexit handlers, never back into its stack
    os.close(write)

    def forward(signum: int, frame: FrameType | None) -> None:
        os.kill(pid, signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read()  # EOF when the child exits
        _, status = os.waitpid(pid, 0)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if os.WIFSIGNALED(status):
        killer = os.WTERMSIG(status)
        name = next((s.name for s in signal.Signals if s == killer), str(killer))
        raise PrestartError(
            f"The {what} were stopped by signal {name}; the server was not started.",
            exit_code=128 + killer,
        )
    code = os.WEXITSTATUS(status)
    if report:
        raise _decode(report)
    if code:
        raise PrestartError(
            f"The {what} failed unexpectedly (exit status {code}, traceback above); the server was not started."
        )
