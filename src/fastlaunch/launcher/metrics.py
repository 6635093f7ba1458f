"""The launcher's side of METRICS=on: the multiprocess directory (created and wiped at start, removed at
exit), dead workers' bookkeeping (a chained ``child_exit`` hook), and the METRICS_PORT exporter process."""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastlaunch.core.exceptions import BindError, ConfigError
from fastlaunch.core.memory import shm_dir
from fastlaunch.core.settings import Settings
from fastlaunch.core.validators import Bind
from fastlaunch.launcher.bind import check_bindable

ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_address(settings: Settings) -> Bind | None:
    """Where the separate exporter listens: METRICS_PORT on the app's host."""
    if settings.metrics_port is None:
        return None
    host = settings.address.host if settings.address.kind == "tcp" else settings.host
    return Bind("tcp", host=host, port=settings.metrics_port)


def check_metrics(settings: Settings) -> None:
    """Fails before anything starts when METRICS=on cannot work here."""
    if not settings.metrics:
        return
    where = settings.source("metrics").describe()
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigError(
            f"METRICS=on ({where}) needs the prometheus-client package, which is not installed.",
            hint="pip install 'fastlaunch[metrics]', or turn metrics off (METRICS=off).",
        )
    address = metrics_address(settings)
    if address is not None:
        if settings.address.kind == "tcp" and address.port == settings.address.port:
            raise ConfigError(
                f"METRICS_PORT={address.port} ({settings.source('metrics_port').describe()}) is the app's port.",
                hint="Choose another port for METRICS_PORT, or unset it to serve /metrics on the app's port.",
            )
        check_bindable(address, where=settings.source("metrics_port").describe())


def _wipe(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


@functools.cache
def _restarts() -> Callable[[str], None]:
    from fastlaunch.worker.memory_guard import REASONS
    from fastlaunch.worker.metrics import worker_restarts

    return worker_restarts(REASONS)


@contextmanager
def metrics_running(settings: Settings) -> Iterator[None]:
    """Prepares PROMETHEUS_MULTIPROC_DIR (inherited by every worker) and the exporter; cleans up on exit."""
    if not settings.metrics:
        yield
        return
    check_metrics(settings)
    given = os.environ.get(ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        directory = given
        _wipe(directory)  # counts from a previous run would be added to this one's
    else:
        directory = tempfile.mkdtemp(prefix="fastlaunch-metrics-", dir=shm_dir())
        os.environ[ENV] = directory
    exporter: subprocess.Popen[str] | None = None
    master = os.getpid()
    try:
        _restarts()  # so the counter reads 0, not absent, until a worker restarts
        address = metrics_address(settings)
        if address is not None:
            exporter = _start_exporter(address)
        yield
    finally:
        # Gunicorn forks the workers inside this block; one leaving must not touch the master's state.
        if os.getpid() == master:
            _clean_up(exporter, directory, wipe_only=bool(given))


def _clean_up(exporter: subprocess.Popen[str] | None, directory: str, *, wipe_only: bool) -> None:
    if exporter is not None:
        exporter.terminate()
        try:
            exporter.wait(10)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait()
    if wipe_only:  # the user's PROMETHEUS_MULTIPROC_DIR: keep the directory, drop this run's counts
        _wipe(directory)
    else:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(ENV, None)


def _start_exporter(address: Bind) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "fastlaunch.launcher.metrics_exporter",
        address.host,
        str(address.port),
        str(os.getpid()),
    ]
    # Its own session: Ctrl-C in a terminal reaches the server, which then stops the exporter by PID.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    status = proc.stdout.readline().strip() if ready else "it did not start within 30 s"
    proc.stdout.close()
    if status != "ready":
        proc.kill()
        proc.wait(10)
        raise BindError(
            f"Cannot serve metrics on {address} (METRICS_PORT): {status or 'the exporter exited'}.",
            hint="Choose a free port for METRICS_PORT, or unset it to serve /metrics on the app's port.",
        )
    return proc


def worker_exited(pid: int, reason: str | None) -> None:
    """Dead-worker bookkeeping: its live gauges go, its counters stay in the totals; a replaced worker
    (``reason`` given; None while shutting down) is counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    if reason is not None:
        _restarts()(reason)
