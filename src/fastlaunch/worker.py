"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied.

Imported by the Gunicorn master and inherited by every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

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

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if self._boot_dir:
            report = Path(self._boot_dir) / f"booted.{self.pid}"
            tmp = Path(self._boot_dir) / f".booted.{self.pid}.tmp"
            tmp.write_text(str(current_rss()))
            tmp.rename(report)  # atomic: the master never reads half a number
