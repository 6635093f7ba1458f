"""The channel between the Gunicorn master and its workers: everything they tell each other beyond signals.

Protocol. Every message lives in anonymous shared memory the master maps before it forks; nothing of it is a
file, so there is no name a worker could replace with a link, a FIFO, a directory or a huge file.

- ``WorkerSlot``: one per worker, mapped by the master just before it forks that worker (Gunicorn's
  ``pre_fork``) and unmapped once the master has reaped it. The worker writes, the master reads:
  ``booted`` (the worker's memory once the app is loaded: the first worker's sizes the pool), ``serving``
  (its lifespan startup is done and it accepts connections) and ``exit`` (why it stops: one of ``REASONS``).
- The denied-file pipe: one for the server, made by the master before it forks when workers run as an
  unprivileged WORKER_USER. A worker whose boot failed on a file its user was denied writes one line, the path,
  at most ``MAX_LINE`` bytes (below PIPE_BUF, so never interleaved with another worker's). Both ends are
  non-blocking: a worker never waits to report, and the master reads only what is there once the server has
  halted, keeps printable characters only and shows the path quoted; nothing there is "no path".
- ``MemoryCap``: one for the server, mapped when this module is imported (in the master, before any fork).
  The master writes MAX_WORKER_MEMORY=auto's per-worker share once the plan is final; workers read it.

Every number is stored beside its bitwise complement. A reader accepts a value only when the two agree, so a
half-written value (the writer is another process) reads as "not yet", and anything else a worker may have
scribbled reads as "no information": the master logs it once and carries on. The master only reads the slots
(memory reads: they cannot block, follow a link or raise on bad content) and writes nothing a worker reads
except the cap. Workers could already signal and trace each other (same user), so one worker scribbling over
another's slot gains it nothing.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
from typing import Any

log = logging.getLogger("fastlaunch")

REASONS = ("memory", "max_requests", "stopped", "timeout", "crash")
_PAIR = struct.Struct("<qq")  # a value and its complement
_BOOTED, _SERVING, _EXIT = 0, _PAIR.size, 2 * _PAIR.size
_SLOT_SIZE = 3 * _PAIR.size
_warned: set[str] = set()
MAX_LINE = 4000


def _put(memory: mmap.mmap, offset: int, value: int) -> None:
    memory[offset : offset + _PAIR.size] = _PAIR.pack(value, ~value)  # one copy: no zeroes in between


def _get(memory: mmap.mmap, offset: int, what: str | None) -> int | None:
    """The value stored at ``offset``; None when none is (all zeroes), or when it is malformed (logged once,
    unless ``what`` is None)."""
    for _ in range(2):  # a mismatch may be a read racing the writer: look once more before calling it nonsense
        try:
            value, check = _PAIR.unpack_from(memory, offset)
        except (ValueError, struct.error):  # unmapped
            return None
        if value == 0 and check == 0:
            return None
        if check == ~value:
            return int(value)
    if what is not None:
        _malformed(what)
    return None


def _malformed(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("A worker left a malformed %s report: ignored (this warning is shown once)", what)


class WorkerSlot:
    """One worker's reports to the master. Made by the master before the fork; the worker inherits it."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _SLOT_SIZE)  # anonymous memory is MAP_SHARED: the fork shares it

    # The worker's side.
    def report_booted(self, memory: int) -> None:
        _put(self._memory, _BOOTED, memory)

    def report_serving(self) -> None:
        _put(self._memory, _SERVING, 1)

    def report_exit(self, reason: str) -> None:
        _put(self._memory, _EXIT, REASONS.index(reason) + 1)

    # The master's side.
    def booted(self) -> int | None:
        """The memory the worker reported once it had loaded the app (bytes), or None."""
        value = _get(self._memory, _BOOTED, "boot")
        if value is not None and not 0 <= value < 1 << 50:
            _malformed("boot")
            return None
        return value

    def serving(self) -> bool:
        value = _get(self._memory, _SERVING, "serving")
        if value not in (None, 1):
            _malformed("serving")
        return value == 1

    def exit_reason(self) -> str | None:
        """The reason the worker gave for stopping, or None when it said nothing (killed, crashed) or nonsense."""
        value = _get(self._memory, _EXIT, "exit")
        if value is None:
            return None
        if not 0 < value <= len(REASONS):
            _malformed("exit")
            return None
        return REASONS[value - 1]

    def close(self) -> None:
        self._memory.close()


class MemoryCap:
    """MAX_WORKER_MEMORY=auto's per-worker share: written by the master, read by every worker."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _PAIR.size)

    def publish(self, cap: int) -> None:
        _put(self._memory, 0, cap)

    def withdraw(self) -> None:
        """No cap after all (``auto``'s share is below a worker's boot size): workers that read it from now on
        find none."""
        self._memory[: _PAIR.size] = bytes(_PAIR.size)

    def read(self) -> int | None:
        """In a worker. Workers can scribble over it, as over each other: that is no business of the master's."""
        return _get(self._memory, 0, None)


def attach(worker: Any) -> WorkerSlot:
    """The master, before forking ``worker`` (a Gunicorn worker object, which the child inherits)."""
    slot = worker.fastlaunch_slot = WorkerSlot()
    return slot


def slot_of(worker: Any) -> WorkerSlot | None:
    """The worker's slot (either side); None for a worker forked by another launcher than fastlaunch's."""
    slot = getattr(worker, "fastlaunch_slot", None)
    return slot if isinstance(slot, WorkerSlot) else None


# Made at import, in the master before it forks, so that every worker (replacements too) shares it.
MEMORY_CAP = MemoryCap()


def open_denied_pipe() -> tuple[int, int]:
    """(read end, write end), both non-blocking; made by the master before it forks, inherited by the workers."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    return read, write


def tell_denied(fd: int | None, path: str) -> None:
    """Worker side: report a boot failure denied `path` ("" when unknown). Never blocks, never raises."""
    if fd is None:
        return
    line = (path.replace("\n", " ") + "\n").encode(errors="replace")[:MAX_LINE]
    with contextlib.suppress(OSError):  # a full pipe (another worker reported first) or a closed one
        os.write(fd, line)


def heard_denied(fd: int) -> str | None:
    """Master side: the first report on the pipe, if any (None: no worker reported a denied file)."""
    try:
        data = os.read(fd, MAX_LINE)
    except OSError:  # nothing there (EAGAIN)
        return None
    if not data:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace")
    return "".join(c for c in line if c.isprintable())[:1000]
