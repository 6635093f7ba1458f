"""Helpers for tests that start real processes on 127.0.0.1. Every process is stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FASTLAUNCH = str(Path(sys.executable).parent / "fastlaunch")
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "tests" / "assets"


def require_tool(name: str, why: str = "") -> str:
    """Path of a tool; skip when missing locally, fail in CI (where .ci/run installs it)."""
    path = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")) if p.exists()), None
    )
    if path:
        return path
    message = f"{name} is not installed{': ' + why if why else ''} (scripts/install-system-deps installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, *, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            return httpx.get(url, timeout=2.0)
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def running(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    log: Path,
    ready_url: str | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process, wait for ready_url to answer, stop it by PID afterwards."""
    full_env = {**os.environ, **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if ready_url:
                try:
                    wait_for_http(ready_url, timeout=timeout, proc=proc)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n--- log ---\n{log.read_text(errors='replace')}") from None
            yield proc
        finally:
            stop(proc)


def serve(
    cwd: Path,
    port: int,
    *flags: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ready_path: str = "/",
    timeout: float = 30.0,
    **settings: str,
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``fastlaunch run [flags]`` in ``cwd`` on 127.0.0.1:port with ``env`` and ``settings``, its stdout and stderr
    in ``log`` (cwd/server.log), once ``ready_path`` answers; stopped by its PID afterwards. The one way the tests
    start a real server: their helpers (hung.py, posts.py, abuse_kit.py, ...) only choose the app and its settings."""
    return running(
        [FASTLAUNCH, "run", *flags],
        cwd=cwd,
        env={"HOST": "127.0.0.1", "PORT": str(port), **(env or {}), **settings},
        log=log or cwd / "server.log",
        ready_url=f"http://127.0.0.1:{port}{ready_path}",
        timeout=timeout,
    )


def run_cli(
    args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FASTLAUNCH, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_workers(pid: int, count: int, *, exclude: Collection[int] = (), timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = child_pids(pid)
        if len(workers) == count and not set(exclude) & set(workers):
            return workers
        time.sleep(0.1)
    raise AssertionError(f"expected {count} workers (not {exclude}), have {child_pids(pid)}")


def chromium(url: str, profile: Path, *mode: str) -> str:
    binary = require_tool("chromium", "the offline docs are checked in a real browser")
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # The network is closed: no name resolves, and anything not on loopback goes to a dead proxy.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--virtual-time-budget=15000",
        "--window-size=1280,1400",
        *mode,
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def remove_cgroup(group: Path) -> None:
    """Kills by PID what a test left in its cgroup (if anything outlived the test), then removes the group."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = (group / "cgroup.procs").read_text().split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.1)
    group.rmdir()


def wait_until(predicate: Callable[[], object], *, timeout: float, step: float = 0.1) -> bool:
    """Polls ``predicate()`` until it is true or ``timeout`` seconds pass; its last value. For the event a test
    waits on (a log line, a worker gone, requests flowing), where a fixed sleep would guess how long it takes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def wait_for_log(log: Path, text: str, *, timeout: float = 30.0) -> str:
    """The log once it holds ``text`` (the master logs some lines after the first worker already answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


T = TypeVar("T")


def until(check: Callable[[], T], what: str, timeout: float = 120) -> T:
    """The first truthy value of ``check``, polled each second; an assertion naming ``what`` and the last value
    (or error) when none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except (httpx.HTTPError, AssertionError, ValueError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{what} not reached within {timeout}s: {last}")
