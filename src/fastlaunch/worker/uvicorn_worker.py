"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied, and a
shutdown that drops no accepted connection.

Glue only: each of its jobs lives in the module named for it (uvicorn_config, uvicorn_loggers, signals,
gc_tuning, app_stack, reports, serve_loop, draining_server). Imported by the Gunicorn master and inherited by
every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker

from fastlaunch.core.channel import slot_of
from fastlaunch.worker import gc_tuning, reports, serve_loop, signals, uvicorn_config, uvicorn_loggers
from fastlaunch.worker.access_log import AccessLog
from fastlaunch.worker.app_stack import app_stack
from fastlaunch.worker.internals import worker_serve_replaceable


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: dict[str, Any] = uvicorn_config.CONFIG_KWARGS
    # The master stages startup (one worker first, measured, then the rest) only for workers that report, which
    # _serve below does: where uvicorn-worker no longer serves through it, the worker is uvicorn-worker's own.
    reports_boot = worker_serve_replaceable(_UvicornWorker)
    wsgi: Any  # the ASGI app, despite Gunicorn's name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # builds self.config from Gunicorn's settings and CONFIG_KWARGS
        self._options = uvicorn_config.options_of(self.app)
        self._forwarded_allow_ips = uvicorn_config.apply_options(self.config, self.cfg, self._options)
        self._access_log: AccessLog | None = None
        self._gc_threshold = gc.get_threshold()  # before a post_fork hook or the app may set their own
        uvicorn_loggers.own_uvicorn_loggers(self.log)

    def init_signals(self) -> None:
        signals.die_with_master(self.ppid)  # only now: Gunicorn has switched to WORKER_USER
        super().init_signals()
        if signals.stopped_while_booting():
            sys.exit(0)  # Gunicorn's worker-exit path: its hooks run, the master reaps a clean exit
        signals.report_aborts(lambda: getattr(self, "wsgi", None))

    async def callback_notify(self) -> None:
        signals.stop_if_orphaned(self.ppid, self.log)
        self.notify()

    def load_wsgi(self) -> None:
        with gc_tuning.collector_paused():
            super().load_wsgi()
        uvicorn_loggers.silence_uvicorn_access()
        self.wsgi = app_stack(self.wsgi, self._options, self._forwarded_allow_ips)
        self._access_log = self.wsgi.access_log
        gc_tuning.tune_gc(self._gc_threshold)
        reports.report_booted(slot_of(self), preload=self._options.preload)

    async def _serve(self) -> None:
        await serve_loop.serve(
            self.config, self.wsgi, self.sockets, options=self._options, slot=slot_of(self), stopping=self._stopping
        )

    def _stopping(self) -> None:
        self.alive = False  # Gunicorn's flag, for what reads it; the quick stop itself is the server's

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._access_log is not None:
                self._access_log.close()  # write the lines still queued
