"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied.

Imported by the Gunicorn master and inherited by every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path
from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker

from fastlaunch.workers import current_rss


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    # "auto" picks uvloop and httptools, which uvicorn[standard] installs.
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto"}
    # The master stages startup (one worker first, measured, then the rest) only for workers that report.
    reports_boot = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: dict[str, Any] = getattr(self.app, "worker_options", {})
        self.config.root_path = options.get("root_path", "")
        # With the access log off, uvicorn must not even format the line: that is most of its cost.
        self.config.access_log = options.get("access_log", True)
        self._boot_dir: str | None = options.get("boot_dir")

    def init_process(self) -> None:
        # uvicorn-worker never checks for its master: after a SIGKILL of the master (OOM killer, kill -9)
        # the orphans would keep the port forever and a supervisor's restart could never bind it.
        # Ask the kernel for SIGTERM when the master dies (Linux); callback_notify covers other systems.
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != self.ppid:  # the master died before prctl took effect
            return
        super().init_process()

    async def callback_notify(self) -> None:
        if os.getppid() != self.ppid:
            self.log.warning("Master %s is gone; worker %s exits", self.ppid, self.pid)
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler: stop accepting, finish in-flight, exit
        self.notify()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if self._boot_dir:
            report = Path(self._boot_dir) / f"booted.{self.pid}"
            tmp = Path(self._boot_dir) / f".booted.{self.pid}.tmp"
            tmp.write_text(str(current_rss()))
            tmp.rename(report)  # atomic: the master never reads half a number
