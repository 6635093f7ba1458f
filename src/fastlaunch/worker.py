"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied.

Imported by the Gunicorn master and inherited by every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker

from fastlaunch.access_log import AccessLog
from fastlaunch.metrics import RequestMetrics
from fastlaunch.middleware import ObservabilityMiddleware
from fastlaunch.workers import current_rss


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
        self._options = options
        self._access_log: AccessLog | None = None
        self._boot_dir: str | None = options.get("boot_dir")

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = self._observed(self.wsgi)
        if self._boot_dir:
            report = Path(self._boot_dir) / f"booted.{self.pid}"
            tmp = Path(self._boot_dir) / f".booted.{self.pid}.tmp"
            tmp.write_text(str(current_rss()))
            tmp.rename(report)  # atomic: the master never reads half a number

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
