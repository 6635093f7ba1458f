"""Serves the app with Gunicorn, driven programmatically.

Settings are copied into Gunicorn's config with ``cfg.set``; then a GUNICORN_CONF file, then
GUNICORN_CMD_ARGS, so the image's precedence holds. ``StagedArbiter`` boots one worker first: its
import errors are shown once (not once per worker), and its RSS sizes the rest when memory is limited.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import pwd
import runpy
import select
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import gunicorn
from gunicorn.app.base import Application
from gunicorn.arbiter import Arbiter
from gunicorn.errors import AppImportError, HaltServer

from fastlaunch.core import denied
from fastlaunch.core.channel import MEMORY_CAP, heard_denied, open_denied_pipe, slot_of, tell_denied
from fastlaunch.core.exceptions import ConfigError, ExitCode, ServerExit
from fastlaunch.core.log_files import LogFileHandler
from fastlaunch.core.logs import dict_config
from fastlaunch.core.memory import current_rss, shm_dir
from fastlaunch.core.settings import Settings
from fastlaunch.core.validators import user_ids
from fastlaunch.launcher.cmd_args import cmd_args_options
from fastlaunch.launcher.discover import AppTarget
from fastlaunch.launcher.memory_floor import CapBelowBoot, MemoryFloor
from fastlaunch.launcher.metrics import metrics_running
from fastlaunch.launcher.preload import note_reload, preload
from fastlaunch.launcher.readiness import ShutdownDelay, StartupWatch
from fastlaunch.launcher.recycling import chain_channel, memory_options, publish_memory_cap
from fastlaunch.launcher.restart_backoff import RestartBackoff
from fastlaunch.launcher.worker_access import check_workers_can_read, owner_names
from fastlaunch.launcher.worker_class import worker_class
from fastlaunch.launcher.workers import WorkerPlan
from fastlaunch.worker.importer import AppNotFound, import_app
from fastlaunch.worker.internals import arbiter_hooks
from fastlaunch.worker.options import WorkerOptions

log = logging.getLogger("fastlaunch")


def gunicorn_options(settings: Settings, workers: int) -> dict[str, Any]:
    """fastlaunch settings as Gunicorn settings (names as in ``gunicorn --help``)."""
    options: dict[str, Any] = {
        "bind": [str(settings.address)],
        "workers": workers,
        "worker_class": worker_class(settings),
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": settings.keep_alive,
        "loglevel": "debug" if settings.log_level == "trace" else settings.log_level,
        "accesslog": settings.access_log,
        "errorlog": settings.error_log,
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests_jitter,
        "preload_app": settings.preload,
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
    identity = worker_identity(settings)
    if identity:
        options["user"], options["group"] = identity
        # Gunicorn would also open and chown ERROR_LOG and ACCESS_LOG by name, as root, on every start and
        # reload, following any link a worker put there: the logging configuration alone opens them.
        options["errorlog"], options["accesslog"] = "-", None
    return options


def worker_identity(settings: Settings) -> tuple[int, int] | None:
    """(uid, gid) the workers switch to: WORKER_USER's (its own group unless one is named), when the master runs
    as root; a master started as another user cannot switch, and its workers keep its user."""
    if not settings.worker_user or os.geteuid() != 0:
        return None
    uid, gid = user_ids(settings.worker_user)  # validated with the settings: they exist
    if uid == 0:
        return None  # WORKER_USER=root: the workers keep the master's user, as the tiangolo images ran them
    return uid, gid


def chain_worker_identity(cfg: Any) -> None:
    """Completes Gunicorn's switch of a worker to WORKER_USER, in a `post_fork` step that runs before it. Gunicorn
    changes the uid and the primary gid only: root's supplementary groups (group 0 among them) would stay, and
    its `initgroups` setting keeps gid 0 instead. And HOME would still be root's, which the worker cannot read.
    Any `post_fork` hook the user set still runs."""
    previous = cfg.post_fork

    def post_fork(server: Any, worker: Any) -> None:
        os.setgroups([worker.cfg.gid])
        os.environ["HOME"] = pwd.getpwuid(worker.cfg.uid).pw_dir
        previous(server, worker)

    cfg.set("post_fork", post_fork)


def chain_boot_signals(cfg: Any) -> None:
    """A stop the master sends while a worker is between its fork and its own signal handlers is kept for the
    worker to act on (worker/signals.py); the first of the `post_fork` steps, before any the user set."""
    from fastlaunch.worker.signals import hold_stops_while_booting

    previous = cfg.post_fork

    def post_fork(server: Any, worker: Any) -> None:
        hold_stops_while_booting(getattr(server, "SIG_QUEUE", None))
        previous(server, worker)

    cfg.set("post_fork", post_fork)


class FastlaunchApplication(Application):  # type: ignore[misc]
    def __init__(self, settings: Settings, target: AppTarget, plan: WorkerPlan, gunicorn_conf: Path | None) -> None:
        self.settings = settings
        self.target = target
        self.plan = plan
        self.gunicorn_conf = gunicorn_conf
        self.workers = plan.workers
        self.identity = worker_identity(settings)
        if self.identity and settings.worker_user:
            check_workers_can_read(settings.worker_user, self.identity, target)
        LogFileHandler.owner = self.identity
        self.backoff = RestartBackoff()
        self.memory_floor = MemoryFloor(settings)
        if settings.worker_user and not self.identity:
            if os.geteuid() == 0:
                log.info(
                    "Workers run as root (WORKER_USER=%s), as in the tiangolo images: set WORKER_USER=app to run "
                    "the app unprivileged once it writes only where that user may",
                    settings.worker_user,
                )
            else:
                log.info(
                    "WORKER_USER=%s left alone: fastlaunch runs as uid %d, not root",
                    settings.worker_user,
                    os.geteuid(),
                )
        # Unprivileged workers tell the master when their boot failed on a file they were denied (core.denied).
        self.denied_pipe = open_denied_pipe() if self.identity else None
        self.worker_options = WorkerOptions(
            root_path=settings.root_path,
            access_log=settings.access_log is not None,
            metrics=settings.metrics,
            serve_metrics=settings.metrics and settings.metrics_port is None,
            request_timeout=settings.request_timeout,
            loop_block_warn=settings.loop_block_warn,
            overload=settings.overload == "auto",
            max_concurrency=settings.max_concurrency,
            healthcheck_path=settings.healthcheck_path,
            **memory_options(settings),
            header_timeout=settings.header_timeout,
            denied_fd=self.denied_pipe[1] if self.denied_pipe else None,
            body_timeout=settings.body_timeout,
            body_min_rate=settings.body_min_rate,
            ws_max_size=settings.ws_max_size,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
            ws_per_message_deflate=settings.ws_per_message_deflate,
        )
        try:
            super().__init__()  # loads the configuration (GUNICORN_CONF), which may fail
        except BaseException:
            self._close_denied()  # run() never starts, so its clean-up never runs
            raise

    def init(self, parser: Any, opts: Any, args: Any) -> None:  # pragma: no cover - unused: load_config is ours
        return None

    def load_config(self) -> None:
        options = gunicorn_options(self.settings, self.workers)
        for key, value in options.items():
            if key in self.cfg.settings:  # older Gunicorn releases lack some settings
                self.cfg.set(key, value)
        # Which input set the worker count last, for the plan line: None while it is fastlaunch's plan.
        self.workers_set_by: str | None = None
        self.workers_from_conf = False
        if self.gunicorn_conf:
            conf = self.load_config_from_file(str(self.gunicorn_conf))
            if isinstance(conf, dict) and "workers" in conf:
                self.workers_set_by = conf_source(self.gunicorn_conf, conf["workers"])
                self.workers_from_conf = True
        # GUNICORN_CMD_ARGS was checked (and parsed) by Gunicorn's own parser before prestart ran.
        extra = cmd_args_options(self.settings.gunicorn_cmd_args)
        for key, value in extra.items():
            self.cfg.set(key, value)
        if extra.get("workers") is not None:
            self.workers_set_by = args_source(self.settings)
            self.workers_from_conf = False
        # A log level from the config file or GUNICORN_CMD_ARGS wins, as in the image: the logging configuration
        # (unless the user brought their own) follows it.
        if self.cfg.loglevel != options["loglevel"] and self.cfg.logconfig_dict is options["logconfig_dict"]:
            s = self.settings
            self.cfg.set(
                "logconfig_dict",
                dict_config(self.cfg.loglevel, s.log_format, error_log=s.error_log, access_log=s.access_log),
            )
        chain_channel(self.cfg, metrics=self.settings.metrics, on_replaced=self.backoff.replaced)
        if self.identity:
            chain_worker_identity(self.cfg)
        chain_boot_signals(self.cfg)

    def load(self) -> Any:
        try:
            return import_app(self.target.module, self.target.attr, str(self.target.path), factory=self.target.factory)
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
        except Exception as exc:
            # Gunicorn would log ~15 frames of its own and importlib's before the app's: show the traceback
            # from the app's first frame on (a library's frames below it stay), then fail the boot as it would.
            shown = app_traceback(exc)
            log.error("The app raised while loading (%s):\n%s", self.target.import_string, shown)
            self.tell_denied(shown)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None

    def tell_denied(self, traceback_text: str) -> None:
        """In a worker that failed to boot: a file its user was denied is reported to the master."""
        path = denied.denied_path(traceback_text, os.getcwd())
        if path is not None and self.denied_pipe:
            tell_denied(self.denied_pipe[1], path)

    def run(self) -> None:
        master = os.getpid()
        try:
            with metrics_running(self.settings, self.identity):
                StagedArbiter(self).run()
        except SystemExit as exc:
            if os.getpid() != master:
                raise  # a worker leaving (Gunicorn forks inside run()): its exit is not the server's
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if code == ExitCode.APP_BOOT and self.denied_pipe and self.identity:
                self.raise_denied(code)
            if code:
                reason = {
                    int(ExitCode.APP_BOOT): "a worker failed to boot: the app raised or stopped while starting (above)",
                    int(ExitCode.APP_NOT_FOUND): "the app could not be loaded (message above)",
                    int(ExitCode.MEMORY_CAP): "MAX_WORKER_MEMORY is below what a worker needs (above)",
                }.get(code, "the server stopped")
                raise ServerExit(f"Gunicorn exited with status {code}: {reason}.", exit_code=code) from None
        finally:
            if os.getpid() == master:
                self._close_denied()

    def _close_denied(self) -> None:
        for fd in self.denied_pipe or ():
            os.close(fd)

    def raise_denied(self, code: int) -> None:
        """The server halted because a worker failed to boot: if it reported a file its user was denied, the last
        message says so, with the user, the path and the fixes."""
        assert self.denied_pipe and self.identity
        path = heard_denied(self.denied_pipe[0])
        if path is None:
            return
        user, group = owner_names(self.identity)
        doing = "while a worker loaded or started the app (traceback above)"
        raise ServerExit(
            f"Gunicorn exited with status {code}: a worker failed to boot. "
            + denied.denied_message(self.settings.worker_user or user, self.identity[0], path, doing=doing),
            exit_code=int(ExitCode.WORKER_ACCESS),
            hint=denied.write_fix(f"{user}:{group}", str(self.settings.project_dir)),
        ) from None


class StagedArbiter(Arbiter):  # type: ignore[misc]
    """Boots one worker, waits until it has loaded the app, then starts the others."""

    num_workers: int

    def setup(self, app: FastlaunchApplication) -> None:
        self._preload(app)
        super().setup(app)
        # setup() runs again on every SIGHUP reload; staging is for the first start only.
        first_start = not hasattr(self, "staging")
        # Staging adds workers in manage_workers: where Gunicorn's loop no longer calls it, all start at once.
        hooks = arbiter_hooks(Arbiter)
        reports = bool(getattr(self.worker_class, "reports_boot", False))
        self.staging = first_start and reports and self.num_workers > 1 and "manage_workers" in hooks
        if self.staging:
            self._target = self.num_workers
            self.num_workers = 1
        elif first_start:
            log_plan(self.log, app, self.num_workers, "")
            publish_memory_cap(app.worker_options, app.plan, self.num_workers)
        if first_start:
            self.startup = StartupWatch(app.settings.startup_timeout, self.log)
            self.shutdown_delay = ShutdownDelay(app.settings.shutdown_delay, self.log)
        if not getattr(self.worker_class, "reports_boot", False):
            self.startup.done = True  # a worker class of the user's own never reports: say nothing rather than lie

    def _preload(self, app: FastlaunchApplication) -> None:
        """PRELOAD=on: the master imports the app here, before Gunicorn forks (its own preload_app finds it)."""
        if not app.settings.preload:
            return
        if getattr(app, "callable", None) is None:  # Gunicorn's loaded app (a reload is the first start otherwise)
            preload(app.wsgi)
        else:  # setup() again: a SIGHUP reload
            note_reload()

    def _wait_time(self, timeout: float) -> float:
        # While staging, poll often: the other workers start as soon as the first one reports.
        timeout = 0.05 if self.staging else min(timeout, self.startup.poll_interval)
        return self.shutdown_delay.remaining(timeout)

    def wait_for_signals(self, timeout: float = 1.0) -> list[int]:
        result: list[int] = super().wait_for_signals(timeout=self._wait_time(timeout))
        return result

    def sleep(self) -> None:
        # Gunicorn 22 and 23's main loop waits here, a second at a time, for a byte on its signal pipe (24+ call
        # wait_for_signals instead): the same shorter waits apply, as its own sleep() does them otherwise.
        try:
            if select.select([self.PIPE[0]], [], [], self._wait_time(1.0))[0]:
                while os.read(self.PIPE[0], 1):
                    pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                raise
        except KeyboardInterrupt:
            sys.exit()

    def handle_term(self) -> None:
        if not self.shutdown_delay.begin():
            super().handle_term()

    def manage_workers(self) -> None:
        if self.shutdown_delay.due():
            raise StopIteration  # as Gunicorn's own SIGTERM handling: the main loop halts, workers drain
        if self.app.memory_floor.pending:
            self._check_memory_floor()
        if self.staging:
            self._check_first_boot()
        super().manage_workers()
        self.startup.poll(self.WORKERS.values(), self._target if self.staging else self.num_workers)

    def spawn_workers(self) -> None:
        if not self.app.backoff.waiting():  # workers replaced in a loop: spaced out (restart_backoff.py)
            super().spawn_workers()

    def _check_memory_floor(self) -> None:
        app: FastlaunchApplication = self.app
        try:
            booted = [pid for pid, worker in self.WORKERS.items() if (slot := slot_of(worker)) and slot.booted()]
            fine = app.memory_floor.check(app.plan, self._target if self.staging else self.num_workers, booted)
        except CapBelowBoot as exc:
            raise HaltServer("MAX_WORKER_MEMORY is below a worker's size at boot", exc.exit_code) from None
        if fine is False:  # auto's share is too small: no recycling by memory, in the workers to come either
            app.worker_options = replace(app.worker_options, max_worker_memory_auto=False)
            MEMORY_CAP.withdraw()

    def _check_first_boot(self) -> None:
        app: FastlaunchApplication = self.app
        measure = "USS" if app.settings.preload else "RSS"  # preloaded: the app's pages are the master's
        for worker in self.WORKERS.values():
            slot = slot_of(worker)
            rss = slot.booted() if slot is not None else None
            if rss is None:
                continue
            plan = app.plan
            if plan.needs_measurement and rss:
                plan = plan.with_measured_worker(rss, master_rss=current_rss(), measure=measure)
                app.plan = plan
                if app.workers_set_by is None:
                    self._target = min(self._target, plan.workers)
            log_plan(self.log, app, self._target, f"first worker {measure} {rss / 2**20:.0f} MiB, ")
            self.staging = False
            app.workers = self._target
            self.cfg.set("workers", self._target)  # so a SIGHUP reload keeps the planned count
            self.num_workers = self._target
            publish_memory_cap(app.worker_options, plan, self._target)
            return


def conf_source(conf: Path, workers: object) -> str:
    return f"{conf.name} ({conf}: workers = {workers})"


def args_source(settings: Settings) -> str:
    return f"GUNICORN_CMD_ARGS ({settings.gunicorn_cmd_args})"


def configured_workers(settings: Settings, conf: Path | None) -> tuple[int, str] | None:
    """The worker count a Gunicorn config file or GUNICORN_CMD_ARGS sets over the plan (the last one wins)
    and which one, read without starting Gunicorn: for `fastlaunch workers`."""
    found: tuple[int, str] | None = None
    if conf:
        try:
            workers = runpy.run_path(str(conf)).get("workers")
        except Exception as exc:
            raise ConfigError(
                f"Cannot read the Gunicorn config file {conf}: {type(exc).__name__}: {exc}.",
                hint="Fix the file (Gunicorn would fail to start with it too), or set GUNICORN_CONF to another one.",
            ) from None
        if workers is not None:
            found = (int(workers), conf_source(conf, workers))
    workers = cmd_args_options(settings.gunicorn_cmd_args).get("workers")
    if workers is not None:
        found = (int(workers), args_source(settings))
    return found


def log_plan(logger: Any, app: FastlaunchApplication, workers: int, measured: str) -> None:
    """The one "Worker plan" line: the count that runs, and the input that decided it."""
    plan = app.plan
    for line in plan.warnings:
        logger.warning("Worker plan: %s", line)
    arithmetic = "; ".join(plan.steps[:-1])
    if app.workers_set_by is None:
        decided = f"{workers} workers ({arithmetic})"
    else:
        decided = f"{workers} workers, set by {app.workers_set_by}; fastlaunch's plan was {plan.workers} ({arithmetic})"
        if app.workers_from_conf and workers > plan.workers:
            logger.warning(
                "Worker plan: %s sets %d workers, more than the %d this process's CPUs and memory allow (%s); "
                "remove `workers` from it to let fastlaunch size the pool, or set WEB_CONCURRENCY.",
                app.gunicorn_conf,
                workers,
                plan.workers,
                arithmetic,
            )
    logger.info("Worker plan: %s; %smaster RSS %.0f MiB", decided, measured, current_rss() / 2**20)


def app_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside importlib, Gunicorn and fastlaunch: the app's own code."""
    ours = (
        os.path.dirname(gunicorn.__file__),
        os.path.dirname(os.path.dirname(__file__)),
        os.path.dirname(importlib.__file__),
        "<frozen ",
    )
    shown = traceback.TracebackException.from_exception(exc)
    frames = list(shown.stack)
    start = next((i for i, f in enumerate(frames) if not f.filename.startswith(ours)), 0)
    shown.stack = traceback.StackSummary.from_list(frames[start:])
    return "".join(shown.format()).rstrip("\n")
