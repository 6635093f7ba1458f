"""Serves the app with Gunicorn, driven programmatically.

Settings are copied into Gunicorn's config with ``cfg.set``; then a GUNICORN_CONF file, then
GUNICORN_CMD_ARGS, so the image's precedence holds. ``StagedArbiter`` boots one worker first: its
import errors are shown once (not once per worker), and its RSS sizes the rest when memory is limited.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import Application
from gunicorn.arbiter import Arbiter
from gunicorn.errors import AppImportError

from fastlaunch.core.exceptions import ExitCode, ServerExit
from fastlaunch.core.logs import dict_config
from fastlaunch.core.memory import current_rss, shm_dir
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.cmd_args import cmd_args_options
from fastlaunch.launcher.discover import AppTarget
from fastlaunch.launcher.metrics import chain_child_exit, metrics_running
from fastlaunch.launcher.workers import WorkerPlan
from fastlaunch.worker.importer import AppNotFound, import_app
from fastlaunch.worker.options import WorkerOptions

log = logging.getLogger("fastlaunch")


def gunicorn_options(settings: Settings, workers: int) -> dict[str, Any]:
    """fastlaunch settings as Gunicorn settings (names as in ``gunicorn --help``)."""
    options: dict[str, Any] = {
        "bind": [str(settings.address)],
        "workers": workers,
        "worker_class": settings.worker_class,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": settings.keep_alive,
        "loglevel": "debug" if settings.log_level == "trace" else settings.log_level,
        "accesslog": settings.access_log,
        "errorlog": settings.error_log,
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests_jitter,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "proc_name": "fastlaunch",
        "chdir": str(settings.project_dir),
        # Gunicorn 24+ opens a control socket under $HOME: two instances on one host would share it, and a
        # read-only home (a hardened container) breaks it. fastlaunch is driven by signals instead.
        "control_socket_disable": True,
        # The one logging configuration (LOG_FORMAT, ERROR_LOG, ACCESS_LOG), inherited by the workers.
        "logconfig_dict": dict_config(
            settings.log_level, settings.log_format, error_log=settings.error_log, access_log=settings.access_log
        ),
    }
    # Gunicorn's heartbeat is a file touched by every worker: in memory, it never waits on a disk.
    if shm_dir():
        options["worker_tmp_dir"] = shm_dir()
    return options


class FastlaunchApplication(Application):  # type: ignore[misc]
    def __init__(self, settings: Settings, target: AppTarget, plan: WorkerPlan, gunicorn_conf: Path | None) -> None:
        self.settings = settings
        self.target = target
        self.plan = plan
        self.gunicorn_conf = gunicorn_conf
        self.workers = plan.workers
        self.boot_dir = tempfile.mkdtemp(prefix="fastlaunch-", dir=shm_dir())
        self.worker_options = WorkerOptions(
            root_path=settings.root_path,
            access_log=settings.access_log is not None,
            boot_dir=self.boot_dir,
            metrics=settings.metrics,
            serve_metrics=settings.metrics and settings.metrics_port is None,
            header_timeout=settings.header_timeout,
        )
        try:
            super().__init__()  # loads the configuration (GUNICORN_CONF), which may fail
        except BaseException:
            shutil.rmtree(self.boot_dir, ignore_errors=True)  # run() never starts, so its clean-up never runs
            raise

    def init(self, parser: Any, opts: Any, args: Any) -> None:  # pragma: no cover - unused: load_config is ours
        return None

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings, self.workers).items():
            if key in self.cfg.settings:  # older Gunicorn releases lack some settings
                self.cfg.set(key, value)
        if self.gunicorn_conf:
            self.load_config_from_file(str(self.gunicorn_conf))
        for key, value in cmd_args_options(self.settings.gunicorn_cmd_args).items():
            self.cfg.set(key, value)
        if self.settings.metrics:
            chain_child_exit(self.cfg)

    def load(self) -> Any:
        try:
            return import_app(self.target.module, self.target.attr, str(self.target.path))
        except AppNotFound as exc:
            raise AppImportError(f"fastlaunch: {exc} (app from {self.target.source})") from None
        except SystemExit as exc:
            # An app that stops itself while loading with a message, sys.exit("..."), has said what is wrong
            # (e.g. every missing setting): that line alone, no traceback, and the start stops like a failed
            # boot instead of Gunicorn restarting the worker over and over.
            if not isinstance(exc.code, str):
                raise
            log.error("The app stopped while loading: %s", exc.code)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None

    def run(self) -> None:
        master = os.getpid()
        try:
            with metrics_running(self.settings):
                StagedArbiter(self).run()
        except SystemExit as exc:
            if os.getpid() != master:
                raise  # a worker leaving (Gunicorn forks inside run()): its exit is not the server's
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if code:
                reason = {
                    int(ExitCode.APP_BOOT): "a worker failed to boot: the app raised or stopped while starting (above)",
                    int(ExitCode.APP_NOT_FOUND): "the app could not be loaded (message above)",
                }.get(code, "the server stopped")
                raise ServerExit(f"Gunicorn exited with status {code}: {reason}.", exit_code=code) from None
        finally:
            if os.getpid() == master:
                shutil.rmtree(self.boot_dir, ignore_errors=True)


class StagedArbiter(Arbiter):  # type: ignore[misc]
    """Boots one worker, waits until it has loaded the app, then starts the others."""

    num_workers: int

    def setup(self, app: FastlaunchApplication) -> None:
        super().setup(app)
        # setup() runs again on every SIGHUP reload; staging is for the first start only.
        first_start = not hasattr(self, "staging")
        self.staging = first_start and bool(getattr(self.worker_class, "reports_boot", False)) and self.num_workers > 1
        if self.staging:
            self._target = self.num_workers
            self.num_workers = 1

    def wait_for_signals(self, timeout: float = 1.0) -> list[int]:
        # While staging, poll often: the other workers start as soon as the first one reports.
        result: list[int] = super().wait_for_signals(timeout=0.05 if self.staging else timeout)
        return result

    def manage_workers(self) -> None:
        if self.staging:
            self._check_first_boot()
        super().manage_workers()

    def _check_first_boot(self) -> None:
        app: FastlaunchApplication = self.app
        for report in Path(app.boot_dir).glob("booted.*"):
            rss = int(report.read_text() or 0)
            report.unlink(missing_ok=True)
            plan = app.plan
            if plan.needs_measurement and rss:
                plan = plan.with_measured_worker(rss, master_rss=current_rss())
                app.plan = plan
                self._target = min(self._target, plan.workers)
            for line in plan.warnings:
                self.log.warning("Worker plan: %s", line)
            self.log.info(
                "Worker plan: %d workers (%s); first worker RSS %.0f MiB, master RSS %.0f MiB",
                self._target,
                "; ".join(plan.steps[:-1]),
                rss / 2**20,
                current_rss() / 2**20,
            )
            self.staging = False
            app.workers = self._target
            self.cfg.set("workers", self._target)  # so a SIGHUP reload keeps the planned count
            self.num_workers = self._target
            return
