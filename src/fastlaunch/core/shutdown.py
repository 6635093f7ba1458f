"""The shutting-down flag: raised by the Gunicorn master when SIGTERM starts SHUTDOWN_DELAY, read by every
worker's ``/readyz`` (``fastlaunch.probes``).

One byte of anonymous shared memory, made when the master imports this module, before it forks: every
worker (replacements too) sees the same byte, with no file, signal or system call on the probe's path.
"""

from __future__ import annotations

import mmap

_FLAG = mmap.mmap(-1, 1)  # anonymous memory is MAP_SHARED: forked processes share it


def begin() -> None:
    _FLAG[0] = 1


def shutting_down() -> bool:
    return _FLAG[0] == 1
