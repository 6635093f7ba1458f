"""WORKER_USER on a real root master: the workers leave when the master is killed, and access logs survive
rotation (mv + SIGUSR1, and copytruncate) with files the workers can still write."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, running, wait_for_workers, wait_until
from worker_user_kit import WORKER_USER, as_root_with_worker_user, require_root

APP = ASSETS / "leanmaster"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A root-owned directory other users can read but not write (pytest's tmp_path is closed to them)."""
    require_root()
    base = Path(tempfile.mkdtemp(prefix="fastlaunch-worker-user-", dir="/var/tmp"))
    base.chmod(0o755)
    (base / "stage").mkdir()
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # dead, not yet reaped
    except OSError:
        return True


def test_workers_leave_when_the_master_is_killed(shared_dir: Path) -> None:
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "WORKER_USER": WORKER_USER}
    command = as_root_with_worker_user([FASTLAUNCH, "run"], shared_dir / "stage")
    log = shared_dir / "server.log"
    with running(command, cwd=APP, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/") as proc:
        workers = wait_for_workers(proc.pid, 2)
        # Forked as root, each switches to nobody before it loads the app.
        assert wait_until(lambda: {uid_of(pid) for pid in workers} == {65534}, timeout=30), "workers run as nobody"
        proc.kill()
        proc.wait(10)
        # The kernel's parent-death signal reaches them at once; without it they noticed only at their next
        # check of the master, TIMEOUT/2 = 60 s later, serving the port meanwhile.
        left = wait_until(lambda: all(gone(pid) for pid in workers), timeout=2, step=0.05)
        assert left, f"workers {[p for p in workers if not gone(p)]} outlived the master by 2 s"


def access_lines(path: Path, marker: str) -> int:
    return path.read_text().count(marker) if path.exists() else 0


def test_access_log_rotation_keeps_the_log_writable_by_the_workers(shared_dir: Path) -> None:
    port = free_port()
    access = shared_dir / "logs" / "access.log"
    access.parent.mkdir(mode=0o755)  # the workers cannot create files here: the master must
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WORKER_USER": WORKER_USER,
        "ACCESS_LOG": str(access),
    }
    command = as_root_with_worker_user([FASTLAUNCH, "run"], shared_dir / "stage")
    log = shared_dir / "server.log"
    base = f"http://127.0.0.1:{port}"

    def logged(marker: str) -> bool:
        """Requests until one is in the log (a worker reopens its file when its SIGUSR1 arrives)."""
        for _ in range(20):
            httpx.get(f"{base}/?{marker}", timeout=10)
            if wait_until(lambda: access_lines(access, marker) > 0, timeout=0.5):
                return True
        return False

    with running(command, cwd=APP, env=env, log=log, ready_url=f"{base}/") as proc:
        assert logged("before-rotation"), log.read_text()
        access.rename(access.with_name("access.log.1"))  # logrotate's default: mv, then SIGUSR1
        proc.send_signal(signal.SIGUSR1)
        assert logged("after-mv"), log.read_text()
        assert access.stat().st_uid == 65534, "the new file belongs to the workers' user"
        assert access_lines(access.with_name("access.log.1"), "after-mv") == 0
        shutil.copy(access, access.with_name("access.log.2"))  # copytruncate: the same file, emptied
        os.truncate(access, 0)
        assert logged("after-copytruncate"), log.read_text()
    assert "PermissionError" not in log.read_text()


def test_rotation_never_follows_a_link_the_workers_planted(shared_dir: Path) -> None:
    port = free_port()
    logs = shared_dir / "logs"
    logs.mkdir()
    shutil.chown(logs, WORKER_USER)  # the workers may write here: so may a compromised app
    secret = shared_dir / "secret"
    secret.mkdir(mode=0o700)
    canary = secret / "canary"
    canary.write_text("root-only\n")
    canary.chmod(0o600)
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WORKER_USER": WORKER_USER,
        "ACCESS_LOG": str(logs / "access.log"),
        "ERROR_LOG": str(logs / "error.log"),
    }
    command = as_root_with_worker_user([FASTLAUNCH, "run"], shared_dir / "stage")
    base = f"http://127.0.0.1:{port}"
    out = shared_dir / "server.log"
    with running(command, cwd=APP, env=env, log=out, ready_url=f"{base}/") as proc:
        for name in ("access.log", "error.log"):  # rotated away, and a link in its place
            (logs / name).rename(logs / f"{name}.1")
            (logs / name).symlink_to(canary)
        proc.send_signal(signal.SIGUSR1)
        refused = f"log file {logs / 'error.log'} not opened"
        assert wait_until(lambda: refused in out.read_text(), timeout=10), out.read_text()
        proc.send_signal(signal.SIGHUP)  # a reload applies the logging configuration again, and logs
        workers = wait_for_workers(proc.pid, 1, timeout=30)
        assert wait_until(lambda: out.read_text().count(refused) >= 2, timeout=10), out.read_text()
        assert httpx.get(f"{base}/", timeout=10).status_code == 200
        assert proc.poll() is None and workers
    assert canary.read_text() == "root-only\n" and canary.stat().st_uid == 0


def test_the_metrics_exporter_reads_as_the_workers_user(shared_dir: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WORKER_USER": WORKER_USER,
        "METRICS": "on",
        "METRICS_PORT": str(metrics_port),
    }
    command = as_root_with_worker_user([FASTLAUNCH, "run"], shared_dir / "stage")
    with running(command, cwd=APP, env=env, log=shared_dir / "server.log", ready_url=f"http://127.0.0.1:{port}/"):
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        wanted = f"metrics_exporter\x00127.0.0.1\x00{metrics_port}\x00".encode()
        exporter = next(pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if wanted in cmdline(pid))
        assert uid_of(exporter) == 65534, "the exporter parses the workers' files as their user, not as root"
    assert 'fastlaunch_worker_restarts_total{reason="memory"} 0.0' in text  # the master's archive, read too
    assert "http_requests_total" in text  # the worker's own file
