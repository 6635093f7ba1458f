"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied, and a
shutdown that drops no accepted connection.

Imported by the Gunicorn master and inherited by every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _UvicornWorker

from fastlaunch.access_log import AccessLog
from fastlaunch.metrics import RequestMetrics
from fastlaunch.middleware import ObservabilityMiddleware
from fastlaunch.workers import current_rss

# How long a connection accepted just before shutdown may take to send its request.
FIRST_REQUEST_GRACE = 1.0


class DrainingServer(Server):
    """Uvicorn closes every connection without a request in progress as soon as shutdown starts. A
    connection the worker accepted a moment before SIGTERM (a reload, a scale-down) has usually not sent its
    request yet, so its client gets a reset. Stop accepting first, then let such connections be served."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FIRST_REQUEST_GRACE
        while (
            loop.time() < deadline
            and not self.force_exit
            and any(getattr(c, "cycle", True) is None for c in self.server_state.connections)
        ):
            await asyncio.sleep(0.02)
        await super().shutdown(sockets)


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    # "auto" picks uvloop and httptools, which uvicorn[standard] installs.
    # access_log=False: fastlaunch's middleware writes the access log, off the request path (Uvicorn's own
    # formats and writes each line inside the request). Uvicorn applies it only when its Config is built.
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "access_log": False}
    # The master stages startup (one worker first, measured, then the rest) only for workers that report.
    reports_boot = True
    wsgi: Any  # the ASGI app, despite Gunicorn's name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: dict[str, Any] = getattr(self.app, "worker_options", {})
        self.config.root_path = options.get("root_path", "")
        # Cancel stuck tasks cleanly just before Gunicorn's graceful timeout would SIGKILL the worker.
        self.config.timeout_graceful_shutdown = max(1, self.cfg.graceful_timeout - 1)
        self._options = options
        self._access_log: AccessLog | None = None
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
        self.wsgi = self._observed(self.wsgi)
        if self._boot_dir:
            report = Path(self._boot_dir) / f"booted.{self.pid}"
            tmp = Path(self._boot_dir) / f".booted.{self.pid}.tmp"
            tmp.write_text(str(current_rss()))
            tmp.rename(report)  # atomic: the master never reads half a number

    async def _serve(self) -> None:
        # uvicorn-worker's _serve, with the draining server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def _observed(self, app: Any) -> ObservabilityMiddleware:
        """The app behind fastlaunch's request id, access log and metrics middleware."""
        if self._options.get("access_log", True):
            self._access_log = AccessLog()
        metrics = RequestMetrics() if self._options.get("metrics") else None
        serve = bool(self._options.get("serve_metrics"))
        return ObservabilityMiddleware(app, access_log=self._access_log, metrics=metrics, serve_metrics=serve)

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._access_log is not None:
                self._access_log.close()  # write the lines still queued
