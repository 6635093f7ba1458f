"""Server processes: started, timed to their first 200, measured from /proc, stopped by PID."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


class ServerFailed(RuntimeError):
    """A server did not come up (or died); the message carries the end of its log."""


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def children(pid: int) -> list[int]:
    """Direct children of a process (from every thread: some servers fork from a helper thread)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def workers_of(pid: int) -> list[int]:
    """The worker processes of a server: its children, less multiprocessing's helper processes."""
    return [child for child in children(pid) if "multiprocessing.resource_tracker" not in cmdline(child)]


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


@dataclass
class Server:
    """A running server; ``startup_s`` is the time from spawn to its first 200 on the ready path."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    startup_s: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its live workers."""
        ticks = sum(cpu_ticks(pid) for pid in [self.pid, *workers_of(self.pid)])
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[int, list[int]]:
        """(master RSS, [RSS of each worker]) in bytes."""
        return rss_bytes(self.pid), [rss_bytes(worker) for worker in workers_of(self.pid)]

    def settle(self, workers: int, timeout: float = 30.0) -> bool:
        """Wait until every worker is up and the server is idle: the first 200 comes from the first worker
        booted, and the others (fastlaunch boots them after the first) must not load the CPU while measured."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(0.2)
            if len(workers_of(self.pid)) >= workers and self.cpu_seconds() - before <= 0.02:
                return True
        return False

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, wait, SIGKILL as a last resort (the whole group: workers too); seconds to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)  # its own session, see start_server
                self.proc.wait(10)
        return time.monotonic() - start


def start_server(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    log: Path,
    timeout: float = 60.0,
) -> Server:
    """Spawn a server in its own session and wait for a 200 on ``ready_path`` (polled every 10 ms)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(proc, port, log, 0.0)
    deadline = start + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(f"exited with {proc.returncode} before serving:\n{server.log_tail()}")
        try:
            status, _ = http_get(port, ready_path, timeout=1.0)
        except OSError:
            time.sleep(0.01)
            continue
        if status == 200:
            server.startup_s = time.monotonic() - start
            return server
        time.sleep(0.01)
    server.stop()
    raise ServerFailed(f"no 200 on {ready_path} within {timeout:.0f}s:\n{server.log_tail()}")
