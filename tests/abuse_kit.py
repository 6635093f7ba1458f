"""Helpers shared by the abuse suite: a fastlaunch server on 127.0.0.1 serving tests/assets/abuse, and raw
socket exchanges bounded in time."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from support import ASSETS, FASTLAUNCH, child_pids, free_port, require_tool
from support import serve as serve_app

APP = ASSETS / "abuse"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return child_pids(self.proc.pid)

    def good(self) -> httpx.Response:
        """The plain request every attack must leave the server able to answer."""
        response = httpx.get(f"{self.url}/", timeout=10)
        assert response.status_code == 200, response.text
        return response


@contextmanager
def serve(log: Path, env: Mapping[str, str] | None = None, *, cwd: Path = APP) -> Iterator[Server]:
    """The abuse app (or ``cwd``'s) with one worker."""
    port = free_port()
    with serve_app(cwd, port, env={"WEB_CONCURRENCY": "1", **(env or {})}, log=log) as proc:
        yield Server(proc, port, log)


def exchange(port: int, request: bytes, *, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send raw bytes; read until the server closes or ``timeout`` passes. Returns (what came back, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_until_closed(sock, timeout)


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    data = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def startup_project(tmp_path: Path) -> Path:
    """A project of the abuse app whose prestart script marks that it ran: it must not when the start is refused."""
    (tmp_path / "main.py").write_text((APP / "main.py").read_text())
    (tmp_path / "prestart.sh").write_text(f"#!/bin/sh\ntouch {tmp_path / 'prestart-ran'}\n")
    (tmp_path / "prestart.sh").chmod(0o755)
    return tmp_path


def isolated_run(project: Path, env: Mapping[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``fastlaunch run`` with a /dev/shm of its own (a private tmpfs in a mount namespace), and what it left
    there: other servers on this machine use the real one."""
    import os

    import pytest

    unshare = require_tool("unshare", "a private /dev/shm for the test")
    listing = project / "shm.txt"
    script = f'mount -t tmpfs tmpfs /dev/shm && "{FASTLAUNCH}" run; code=$?; ls -A /dev/shm > "{listing}"; exit $code'
    result = subprocess.run(
        [unshare, "--mount", "sh", "-c", script],
        cwd=project,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "mount:" in result.stderr and "permission denied" in result.stderr.lower():
        pytest.skip("mounting a private /dev/shm is not allowed here")
    return result, (project / "shm.txt").read_text().split()
