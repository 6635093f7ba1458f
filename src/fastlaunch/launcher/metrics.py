"""The launcher's side of METRICS=on: the multiprocess directory (created and wiped at start, removed at
exit; the workers write it), the archive directory (the master's: dead workers' totals and the restarts
counter, ``metrics_archive.py``), dead workers' bookkeeping (a chained ``child_exit`` hook), and the
METRICS_PORT exporter process (which reads both as the workers' user)."""

from __future__ import annotations

import glob
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from fastlaunch.core.exceptions import BindError, ConfigError
from fastlaunch.core.memory import shm_dir
from fastlaunch.core.settings import Settings
from fastlaunch.core.validators import Bind
from fastlaunch.launcher.bind import check_bindable
from fastlaunch.launcher.metrics_archive import Archive
from fastlaunch.worker.metrics import ARCHIVE_ENV

ENV = "PROMETHEUS_MULTIPROC_DIR"
_archive: list[Archive] = []  # the running server's, in the master


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
        try:
            os.remove(path)  # a link goes, never what it points at
        except OSError:  # a directory a worker made under that name: not the master's to clear
            pass


@contextmanager
def metrics_running(settings: Settings, identity: tuple[int, int] | None = None) -> Iterator[None]:
    """Prepares PROMETHEUS_MULTIPROC_DIR (inherited by every worker, handed to ``identity``: WORKER_USER),
    the archive and the exporter; cleans up on exit."""
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
    if identity:
        os.chown(directory, *identity)
    archive_dir = tempfile.mkdtemp(prefix="fastlaunch-metrics-archive-", dir=shm_dir())
    os.chmod(archive_dir, 0o755)  # read by the workers and the exporter, written by the master alone
    os.environ[ARCHIVE_ENV] = archive_dir
    exporter: subprocess.Popen[str] | None = None
    master = os.getpid()
    try:
        _archive.append(Archive(archive_dir, directory, identity[0] if identity else None))
        address = metrics_address(settings)
        if address is not None:
            exporter = _start_exporter(address, identity)
        yield
    finally:
        # Gunicorn forks the workers inside this block; one leaving must not touch the master's state.
        if os.getpid() == master:
            _clean_up(exporter, directory, wipe_only=bool(given))
            _archive.clear()
            shutil.rmtree(archive_dir, ignore_errors=True)
            os.environ.pop(ARCHIVE_ENV, None)


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


def _start_exporter(address: Bind, identity: tuple[int, int] | None) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "fastlaunch.launcher.metrics_exporter",
        address.host,
        str(address.port),
        str(os.getpid()),
        *(str(i) for i in identity or ()),
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
    """Dead-worker bookkeeping: its live gauges go, its counters move into the archive; a replaced worker
    (``reason`` given; None while shutting down) is counted."""
    for archive in _archive:
        archive.compact(pid)
        if reason is not None:
            archive.count_restart(reason)
