"""The default worker class: uvicorn-worker's UvicornWorker with fastlaunch's settings applied, and a
shutdown that drops no accepted connection.

Imported by the Gunicorn master and inherited by every worker, so it imports nothing from the CLI.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _UvicornWorker

from fastlaunch.core import denied
from fastlaunch.core.channel import slot_of, tell_denied
from fastlaunch.core.memory import current_rss, unique_memory
from fastlaunch.worker.access_log import AccessLog
from fastlaunch.worker.admission import QUEUE_TARGET, AdmissionControl, ShedCounter
from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.deadline import RequestDeadline, TimeoutCounter
from fastlaunch.worker.head_limits import HeadLimits
from fastlaunch.worker.internals import (
    captured_signals_clearable,
    drain_supported,
    h11_protocol_usable,
    httptools_importable,
    httptools_protocol_usable,
    worker_serve_replaceable,
)
from fastlaunch.worker.memory_guard import MemoryGuard, record_exit
from fastlaunch.worker.metrics import RequestMetrics
from fastlaunch.worker.middleware import ObservabilityMiddleware
from fastlaunch.worker.options import WorkerOptions
from fastlaunch.worker.threads import hold_threads_until_they_return
from fastlaunch.worker.watchdog import LoopWatchdog, report_abort, stall_histogram

# Without httptools (no wheel for this platform), Uvicorn's h11 protocol with the same bounds; with a Uvicorn
# whose protocol changed, Uvicorn's own choice (internals.py has said what is off).
HTTP: type[HttpToolsOneWriteProtocol] | type[H11LimitsProtocol] | str = "auto"
if httptools_protocol_usable():
    from fastlaunch.worker.http_protocol import HttpToolsOneWriteProtocol

    HTTP = HttpToolsOneWriteProtocol
elif not httptools_importable() and h11_protocol_usable():
    from fastlaunch.worker.h11_protocol import H11LimitsProtocol

    HTTP = H11LimitsProtocol
# Checked on import, in the master before it forks: a release that changed is named once, at start.
DRAIN, CLEAN_EXIT = drain_supported(), captured_signals_clearable()

# The longest a shutdown waits for clients to send the request they may already be sending.
DRAIN_GRACE = 1.5
# A keep-alive connection idle for this long is taken as idle, not as about to send its next request.
IDLE_AFTER = 0.25


class DrainingServer(Server):
    """Uvicorn closes every connection without a request in progress as soon as shutdown starts. On a reload
    or scale-down that resets clients: a connection accepted a moment before SIGTERM has usually not sent its
    request yet, and a keep-alive client may be sending its next one. Stop accepting first; then, for a
    bounded moment, serve what arrives with `Connection: close`, and close only connections really idle."""

    on_started: Callable[[], None] | None = None  # told once the app's lifespan startup is done and it listens

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not DRAIN:  # Uvicorn's own shutdown (internals.py has said why)
            await super().shutdown(sockets=sockets)
            self._exit_cleanly()
            return
        for server in self.servers:
            server.close()
        # Every response from now on announces the close, so keep-alive clients reconnect (to the workers
        # still listening) instead of reusing a connection this worker is about to close. Uvicorn refreshes
        # these headers only from its main loop, which has stopped.
        self.server_state.default_headers = [*self.server_state.default_headers, (b"connection", b"close")]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_GRACE
        while loop.time() < deadline and not self.force_exit and self._drain_step(loop.time()):
            await asyncio.sleep(0.02)
        await super().shutdown()  # not the listeners: closing the servers above has closed them
        self._exit_cleanly()

    def _exit_cleanly(self) -> None:
        # Uvicorn re-raises the signal it caught once serve() returns, so the worker died by SIGTERM before
        # its own clean-up ran (the access log's last lines, Gunicorn's worker_exit hook). A worker that has
        # shut down gracefully exits normally instead. (A private list, so looked up with care.)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list) and CLEAN_EXIT:
            captured.clear()

    def _drain_step(self, now: float) -> bool:
        """One pass over the connections; True while some may still send or receive a request."""
        waiting = False
        for connection in list(self.server_state.connections):
            conn: Any = connection
            cycle: Any = getattr(conn, "cycle", False)
            if cycle is False:  # not an HTTP/1 connection uvicorn tracks this way: leave it to uvicorn
                continue
            if cycle is None:  # accepted, request not read yet
                waiting = True
            elif not cycle.response_complete:
                waiting = True  # let it finish under the headers it started with
            else:
                idle_since = _idle_since(conn)
                if idle_since is None:  # the next request's headers are arriving
                    waiting = True
                elif now - idle_since >= IDLE_AFTER:
                    conn.transport.close()
                else:
                    waiting = True  # a keep-alive client may be sending its next request
        return waiting


def _idle_since(conn: Any) -> float | None:
    """Since when a connection has waited for its next request: the worker's protocol says; Uvicorn's own
    arms its keep-alive timer when a response completes and disarms it when data arrives."""
    if hasattr(conn, "idle_since"):
        since: float | None = conn.idle_since()
        return since
    timer = getattr(conn, "timeout_keep_alive_task", None)
    return None if timer is None else float(timer.when() - conn.timeout_keep_alive)


# CPython collects the young generation every 700 net new container objects. With 64 requests in flight
# about that many are alive at any moment, so a busy worker collected every ten requests or so. Measured
# here (docs app, 2 workers, wrk -c64): the collector took ~38 us of a ~400 us request at 700, ~14 us at 2000.
YOUNG_THRESHOLD = 2000


def _tune_gc(*, app_chose_threshold: bool) -> None:
    """After the app has loaded: take its heap out of the collector's way."""
    # The app's modules, routes and models live as long as the worker, yet every full collection walked
    # them all (60k+ objects, ~40 ms, every second or two under load). Frozen, it walks only what requests made.
    gc.freeze()
    if not app_chose_threshold:
        gc.set_threshold(max(YOUNG_THRESHOLD, gc.get_threshold()[0]), *gc.get_threshold()[1:])


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    # "auto" picks uvloop, which uvicorn[standard] installs; HTTP is its httptools protocol (http_protocol.py),
    # or its h11 one where httptools is missing (h11_protocol.py).
    # access_log=False: fastlaunch's middleware writes the access log, off the request path (Uvicorn's own
    # formats and writes each line inside the request). Uvicorn applies it only when its Config is built.
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": HTTP, "access_log": False}
    # The master stages startup (one worker first, measured, then the rest) only for workers that report, which
    # _serve below does: where uvicorn-worker no longer serves through it, the worker is uvicorn-worker's own.
    reports_boot = worker_serve_replaceable(_UvicornWorker)
    wsgi: Any  # the ASGI app, despite Gunicorn's name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: WorkerOptions = getattr(self.app, "worker_options", None) or WorkerOptions()
        self.config.root_path = options.root_path
        # Cancel stuck tasks cleanly just before Gunicorn's graceful timeout would SIGKILL the worker.
        self.config.timeout_graceful_shutdown = max(1, self.cfg.graceful_timeout - 1)
        # The middleware applies trusted proxies' forwarded headers itself, so Uvicorn does not wrap the app
        # in a second layer for them.
        self._forwarded_allow_ips = self.config.forwarded_allow_ips if self.config.proxy_headers else None
        self.config.proxy_headers = False
        self._options = options
        self._access_log: AccessLog | None = None
        self._gc_threshold = gc.get_threshold()  # before a post_fork hook or the app may set their own
        self._own_uvicorn_loggers()
        self._limit_request_heads(options)
        self._limit_websockets(options)

    def _own_uvicorn_loggers(self) -> None:
        # uvicorn-worker made "uvicorn.error" and "uvicorn.access" share Gunicorn's handler *lists* (this runs in
        # the master). A SIGHUP re-applies the logging configuration, which empties one list through the other:
        # every later line of Gunicorn and Uvicorn went to logging's bare last-resort handler, or nowhere. The
        # one configuration (core/logs.py) already routes both loggers; give each its own list of it.
        for name, gunicorn_logger in (("uvicorn.error", self.log.error_log), ("uvicorn.access", self.log.access_log)):
            logger = logging.getLogger(name)
            if logger.handlers is gunicorn_logger.handlers:
                logger.handlers = list(gunicorn_logger.handlers)

    def _limit_request_heads(self, options: WorkerOptions) -> None:
        # Gunicorn's limit_request_* settings, which Uvicorn's protocols ignore, HEADER_TIMEOUT and BODY_TIMEOUT.
        if isinstance(HTTP, str) or self.config.http is not HTTP:
            return
        limits = HeadLimits(
            request_line=self.cfg.limit_request_line,
            fields=self.cfg.limit_request_fields,
            field_size=self.cfg.limit_request_field_size,
            header_timeout=options.header_timeout,
        )
        self.config.http = HTTP.with_limits(limits, BodyLimits(options.body_timeout, options.body_min_rate))

    def _limit_websockets(self, options: WorkerOptions) -> None:
        # Uvicorn's protocols read these from the config for each connection; an older Uvicorn lacks the last.
        limits = {
            "ws_max_size": options.ws_max_size,
            "ws_ping_interval": options.ws_ping_interval or None,
            "ws_ping_timeout": options.ws_ping_timeout or None,
            "ws_per_message_deflate": options.ws_per_message_deflate,
        }
        for name, value in limits.items():
            if hasattr(self.config, name):
                setattr(self.config, name, value)

    def init_signals(self) -> None:
        # Gunicorn calls this once the worker has switched to WORKER_USER, and a credential change clears
        # the parent-death signal: asked for any earlier, it would be lost under WORKER_USER.
        self._die_with_master()
        super().init_signals()
        # Gunicorn's TIMEOUT sends SIGABRT to a worker whose loop stopped: say where it was stuck, then die of it.
        signal.signal(signal.SIGABRT, lambda signum, frame: report_abort(signum, frame, getattr(self, "wsgi", None)))

    def _die_with_master(self) -> None:
        # uvicorn-worker never checks for its master: after a SIGKILL of the master (OOM killer, kill -9)
        # the orphans would keep the port forever and a supervisor's restart could never bind it.
        # Ask the kernel for SIGTERM when the master dies (Linux); callback_notify covers other systems.
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != self.ppid:  # the master died before prctl took effect: nobody will signal
            sys.exit(0)

    async def callback_notify(self) -> None:
        if os.getppid() != self.ppid:
            self.log.warning("Master %s is gone; worker %s exits", self.ppid, self.pid)
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler: stop accepting, finish in-flight, exit
        self.notify()

    def load_wsgi(self) -> None:
        # Importing the app makes many objects and little garbage (about 700 objects in cycles for FastAPI's docs
        # app), and the collector ran hundreds of times meanwhile: 5-10 % of the import. It is off during it;
        # what the import made is frozen afterwards (_tune_gc), cycles included, and never walked again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            super().load_wsgi()
        finally:
            if collecting:
                gc.enable()
        # fastlaunch's middleware writes the access log (or, with ACCESS_LOG empty, nothing does). An app that
        # attached its own handler to uvicorn.access while loading (the loguru recipe) would make Uvicorn's
        # protocol log each request a second time, even with the access log off.
        logging.getLogger("uvicorn.access").disabled = True
        self.wsgi = self._observed(self.wsgi)
        _tune_gc(app_chose_threshold=gc.get_threshold() != self._gc_threshold)
        slot = slot_of(self)
        if slot is not None:
            # Preloaded, the app's pages are the master's, shared: what this worker adds is its USS.
            slot.report_booted(unique_memory() if self._options.preload else current_rss())

    async def _serve(self) -> None:
        # uvicorn-worker's _serve, with the draining server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_quick_stop(server)
        watchdog = self._start_watchdog()
        server.on_started = lambda: self._on_started(watchdog)
        startup_errors = self._watch_startup_errors(server)  # wraps on_started: set it first
        guard = self._guard_memory(server)
        # The plain sockets inside Gunicorn's listeners: uvloop detaches a plain socket when it stops
        # serving, but closes anything else a second time, which Gunicorn's wrapper logged as EBADF.
        try:
            await server.serve(sockets=[getattr(listener, "sock", listener) for listener in self.sockets])
        except SystemExit:
            if not server.started:  # newer Uvicorn exits by itself when the lifespan startup fails
                self._tell_denied(startup_errors)
            raise
        if watchdog is not None:
            watchdog.stop()
        record_exit(slot_of(self), guard, server)
        if not server.started:
            self._tell_denied(startup_errors)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def _tell_denied(self, startup_errors: denied.ErrorTail | None) -> None:
        if startup_errors is not None:
            found = denied.denied_path(startup_errors.text, os.getcwd())
            if found is not None:
                tell_denied(self._options.denied_fd, found)

    def _watch_startup_errors(self, server: DrainingServer) -> denied.ErrorTail | None:
        """Under an unprivileged WORKER_USER: what Uvicorn logs while the app's lifespan starts (a failed startup
        is logged as text, its traceback included), kept until the app serves."""
        if self._options.denied_fd is None:
            return None
        tail = denied.ErrorTail()
        logger = logging.getLogger("uvicorn.error")
        logger.addHandler(tail)
        report = server.on_started

        def started() -> None:
            logger.removeHandler(tail)
            if report is not None:
                report()

        server.on_started = started
        return tail

    def _on_started(self, watchdog: LoopWatchdog | None) -> None:
        if watchdog is not None:
            watchdog.started()  # stalls while the app started are expected: reported from now on
        self._report_serving()

    def _report_serving(self) -> None:
        """Tells the master this worker serves (its readiness line waits for every worker's)."""
        slot = slot_of(self)
        if slot is not None:
            slot.report_serving()

    def _start_watchdog(self) -> LoopWatchdog | None:
        if not self._options.loop_block_warn:
            return None
        observe = stall_histogram() if self._options.metrics else None
        watchdog = LoopWatchdog(
            asyncio.get_running_loop(), self._options.loop_block_warn, app=self.wsgi, observe=observe
        )
        watchdog.start()
        return watchdog

    def _guard_memory(self, server: Server) -> MemoryGuard | None:
        """MAX_WORKER_MEMORY: a task that stops the server, as MAX_REQUESTS does, once the worker is too big."""
        options = self._options
        guard = MemoryGuard(options.max_worker_memory, auto=options.max_worker_memory_auto)
        if not guard.active:
            return None
        self._memory_task = asyncio.get_running_loop().create_task(guard.watch(server))  # held: tasks are weak
        return guard

    def _install_quick_stop(self, server: Server) -> None:
        # Gunicorn sends SIGQUIT for a quick stop (SIGINT or SIGQUIT to the master). uvicorn-worker's handler only
        # cleared Gunicorn's `alive` flag, which the Uvicorn server never reads: workers served on until the
        # master's graceful timeout ran out and it SIGKILLed them. Stop now: no drain, in-flight requests dropped.
        def quick_stop() -> None:
            self.alive = False
            server.should_exit = server.force_exit = True

        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, quick_stop)

    def _observed(self, app: Any) -> ObservabilityMiddleware:
        """The app behind fastlaunch's request id, access log and metrics middleware."""
        if self._options.access_log:
            self._access_log = AccessLog()
        if self._options.request_timeout:
            counter = TimeoutCounter() if self._options.metrics else None
            app = RequestDeadline(app, self._options.request_timeout, counter=counter)
            hold_threads_until_they_return()  # a cut sync handler's thread must not free its place early
        options = self._options
        if options.overload or options.max_concurrency:
            app = AdmissionControl(
                app,
                queue_target=QUEUE_TARGET if options.overload else None,
                max_concurrency=options.max_concurrency,
                forwarded_allow_ips=self._forwarded_allow_ips,
                counter=ShedCounter() if options.metrics else None,
            )
        return ObservabilityMiddleware(
            app,
            access_log=self._access_log,
            metrics=RequestMetrics() if self._options.metrics else None,
            serve_metrics=self._options.serve_metrics,
            forwarded_allow_ips=self._forwarded_allow_ips,
        )

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._access_log is not None:
                self._access_log.close()  # write the lines still queued
