"""1,000 idle connections and 300 slowloris connections against one worker of a real ``fastlaunch run`` on
127.0.0.1: a normal client is served while they are open, and every one of them is closed by the server within
its timeout (KEEP_ALIVE for the silent ones, HEADER_TIMEOUT for the trickling ones)."""

from __future__ import annotations

import http.client
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from abuse_kit import serve, status_of
from support import wait_until

IDLE = 1000
SLOW = 300
KEEP_ALIVE = 8  # long enough to open all 1,300 connections on a busy machine before the first closes
HEADER_TIMEOUT = 10
TRICKLE = 0.5  # seconds between a slowloris connection's bytes: far below either timeout


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for the test's and the server's sockets (the server inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * (IDLE + SLOW)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the hard file limit ({hard}) is below {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def sockets_of(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += str(fd.readlink()).startswith("socket:")
        except OSError:
            continue
    return count


def test_idle_and_slowloris_connections_are_closed_while_clients_are_served(tmp_path: Path, many_files: None) -> None:
    env = {"KEEP_ALIVE": str(KEEP_ALIVE), "HEADER_TIMEOUT": str(HEADER_TIMEOUT), "ACCESS_LOG": ""}
    with serve(tmp_path / "server.log", env) as server:
        (worker,) = server.workers()
        baseline = sockets_of(worker)
        selector = selectors.DefaultSelector()
        opened: dict[socket.socket, tuple[str, float]] = {}
        try:
            for kind, count in (("idle", IDLE), ("slow", SLOW)):
                for _ in range(count):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                    if kind == "slow":
                        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                    sock.setblocking(False)
                    selector.register(sock, selectors.EVENT_READ)
                    opened[sock] = (kind, time.monotonic())
            # Every connection accepted and held by the worker at once. (Counted absolutely: the baseline may
            # include the readiness check's connection, closing as it was counted.)
            assert wait_until(lambda: sockets_of(worker) >= IDLE + SLOW, timeout=20), sockets_of(worker)

            # A normal client, served while all of them are open (new connection each: accepted behind them).
            served_in = []
            for _ in range(5):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                started = time.monotonic()
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                served_in.append(time.monotonic() - started)
                conn.close()
                assert response.status == 200

            closed: dict[str, list[float]] = {"idle": [], "slow": []}
            answers: list[int] = []
            resets = 0
            deadline = time.monotonic() + HEADER_TIMEOUT + 15
            last_trickle = 0.0
            while opened and time.monotonic() < deadline:
                now = time.monotonic()
                if now - last_trickle >= TRICKLE:  # one more header byte on every slowloris connection
                    last_trickle = now
                    for sock, (kind, _) in list(opened.items()):
                        if kind == "slow":
                            try:
                                sock.send(b"X")
                            except OSError:
                                pass
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj  # type: ignore[assignment]
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionResetError:  # a byte sent after the 408 and the close: the reset may beat it
                        data = b""
                        resets += 1
                    kind, at = opened[sock]
                    if data:
                        answers.append(status_of(data))
                        continue
                    closed[kind].append(time.monotonic() - at)
                    selector.unregister(sock)
                    sock.close()
                    del opened[sock]
            still_open = len(opened)
        finally:
            for sock in opened:
                sock.close()
            selector.close()
        after = httpx.get(f"{server.url}/", timeout=10)
        assert wait_until(lambda: sockets_of(worker) <= baseline + 2, timeout=10), sockets_of(worker)
    assert still_open == 0
    assert len(closed["idle"]) == IDLE and len(closed["slow"]) == SLOW
    assert set(answers) == {408} and len(answers) + resets >= SLOW, (answers, resets)  # each was told why
    # Generous bounds: closed by the timeouts, not by anything slower (they were never closed before).
    assert max(closed["idle"]) < KEEP_ALIVE + 10
    assert max(closed["slow"]) < HEADER_TIMEOUT + 10
    assert after.status_code == 200
    print(
        f"\nnormal requests served in {min(served_in) * 1000:.1f}-{max(served_in) * 1000:.1f} ms "
        f"with {IDLE} idle + {SLOW} slowloris open; "
        f"idle closed after {min(closed['idle']):.2f}-{max(closed['idle']):.2f} s, "
        f"slowloris after {min(closed['slow']):.2f}-{max(closed['slow']):.2f} s"
    )
