"""LOG_FORMAT, the access log and request ids, on a real `fastlaunch run` (Gunicorn + Uvicorn workers)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, running, wait_for_log

from fastlaunch.request_id import choose

APP = ASSETS / "obsapp"
SECRET = "s3cr3tpw"
ENV = {
    "WEB_CONCURRENCY": "2",
    "LOG_LEVEL": "debug",  # the most the server ever says: still no secret
    "DATABASE_URL": f"postgresql://u:{SECRET}@127.0.0.1/db",
    "DB_WAIT_TIMEOUT": "0",  # no database behind it: the value is here only to prove it is never logged
    "MIGRATE": "off",
    "PYTHONDONTWRITEBYTECODE": "1",
}
ACCESS_FIELDS = {"method", "path", "status", "duration_ms", "client", "user_agent", "request_id"}


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """Yields the base URL and the log file (complete once the block has ended and the server stopped)."""
    port = free_port()
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    command = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, cwd=APP, env={**ENV, **env}, log=log, ready_url=f"{base}/"):
        yield base, log


def json_lines(log: Path) -> list[dict[str, Any]]:
    entries = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)  # every line, or the test fails here with the offending line
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


def raw_request(base: str, header_value: bytes, path: bytes = b"/log") -> bytes:
    """Sends bytes no HTTP client library would send, and returns the raw response."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: " + header_value + b"\r\n\r\n"
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_json_mode_every_line_is_json_and_request_ids_tie_lines_together(tmp_path: Path) -> None:
    with serving(tmp_path, LOG_FORMAT="json") as (base, log):
        items = [httpx.get(f"{base}/items/{i}") for i in range(5)]
        given = httpx.get(f"{base}/log", headers={"X-Request-ID": "client-chosen-id.42"})
        generated = httpx.get(f"{base}/log")
        boom = httpx.get(f"{base}/boom")
    assert [r.status_code for r in items] == [200] * 5
    assert given.headers["x-request-id"] == "client-chosen-id.42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert boom.status_code == 500

    entries = json_lines(log)
    text = log.read_text()
    assert SECRET not in text
    messages = [e["message"] for e in entries]
    assert any("Booting worker" in m for m in messages), "startup lines are missing"
    assert any("Shutting down: Master" in m for m in messages), "shutdown lines are missing"

    access = [e for e in entries if e["logger"] == "fastlaunch.access"]
    for entry in access:
        assert ACCESS_FIELDS <= entry.keys(), entry
    by_id = {e["request_id"]: e for e in access}
    for response in [*items, given, generated, boom]:
        line = by_id[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert line["path"] == response.request.url.raw_path.decode()
        assert line["method"] == "GET"
        assert line["user_agent"].startswith("python-httpx/")
        assert line["client"].startswith("127.0.0.1:")

    app_lines = [e for e in entries if e["logger"] == "obsapp"]
    assert {e["request_id"] for e in app_lines} == {"client-chosen-id.42", generated.headers["x-request-id"]}
    # The server's traceback line for the failing request carries that request's id.
    errors = [e for e in entries if "exc_info" in e and "boom from the app" in e["exc_info"]]
    assert errors and all(e["request_id"] == boom.headers["x-request-id"] for e in errors)


def test_text_mode_is_readable_and_carries_the_request_id(tmp_path: Path) -> None:
    with serving(tmp_path) as (base, log):
        response = httpx.get(f"{base}/log", headers={"X-Request-ID": "trace-me-7"})
        encoded = httpx.get(f"{base}/items/%0Afake-line")  # a decoded %0A must not split the access line
    assert response.headers["x-request-id"] == "trace-me-7"
    assert encoded.status_code == 422
    lines = log.read_text().splitlines()
    assert SECRET not in log.read_text()
    tagged = [line for line in lines if line.endswith("request_id=trace-me-7")]
    assert any("[WARNING] handled /log in the app" in line for line in tagged), tagged
    assert any('"GET /log HTTP/1.1" 200' in line for line in tagged), tagged
    assert not any(line.startswith("fake-line") for line in lines)
    assert any('"GET /items/%0Afake-line HTTP/1.1" 422' in line for line in lines)
    for line in lines:
        assert not line.startswith("{"), line


def test_a_request_finishing_during_shutdown_is_still_logged(tmp_path: Path) -> None:
    # Connection: close leaves the draining worker nothing to wait for, so it exits right after the
    # response: the access line queued for the log thread must be written before the process ends.
    results: list[int] = []

    def held_request(base: str) -> None:
        url = f"{base}/hold?s=1&announce=true"
        results.append(httpx.get(url, headers={"Connection": "close"}, timeout=30).status_code)

    port = free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "server.log"
    command = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running(command, cwd=APP, env=ENV, log=log, ready_url=f"{base}/") as proc, ThreadPoolExecutor(1) as pool:
        done = pool.submit(held_request, base)
        wait_for_log(log, "hold started")  # the request is in the app, for a second more
        proc.send_signal(signal.SIGTERM)
        done.result(30)
        assert proc.wait(30) == 0
    assert results == [200]
    text = log.read_text()
    assert '"GET /hold?s=1&announce=true HTTP/1.1" 200' in text, text
    # A worker that finished its graceful shutdown exits normally; it is not killed by the signal.
    assert "was sent SIGTERM" not in text, text
    assert "Worker exiting" in text, text
    assert "Error while closing socket" not in text, text  # the listeners are closed once, quietly


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_malicious_request_ids_are_replaced_and_never_logged(tmp_path: Path, fmt: str) -> None:
    hostile = [
        b"A" * 10240,
        b"abc\x1b[31mred\x07",
        b'abc", "level": "CRITICAL", "x": "',
        b"abc request_id=forged",
        b"abc\tdef",
        b"\xff\xfe\xc3\xa9",
    ]
    with serving(tmp_path, LOG_FORMAT=fmt) as (base, log):
        responses = [raw_request(base, value) for value in hostile]
        # An LF ends the header: the rest becomes a header of its own, never part of the id.
        split = raw_request(base, b"abc\nX-Injected: yes")
    text = log.read_text()
    for value, response in zip(hostile, responses, strict=True):
        head = response.split(b"\r\n\r\n", 1)[0]
        if head.startswith(b"HTTP/1.1 200"):
            returned = re.search(rb"(?im)^x-request-id: (.*)$", head)
            assert returned is not None
            assert re.fullmatch(rb"[0-9a-f]{32}", returned.group(1).strip()), head
        else:
            assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), head  # refused before the app: parser or limits
        assert value.decode("latin-1") not in text
    assert b"A" * 200 not in log.read_bytes()
    assert "\x1b" not in text and "\x07" not in text
    if split.startswith(b"HTTP/1.1 200"):
        assert b"x-request-id: abc\r\n" in split  # "abc" alone is a sane id
    assert "X-Injected" not in text
    if fmt == "json":
        json_lines(log)


def test_choose_keeps_sane_ids_and_replaces_the_rest() -> None:
    assert choose(b"0f8fad5b-d9cb-469f-a165-70867728950e") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert choose(b"Root=1-5759e988-bd862e3fe1be46a994272793") == "Root=1-5759e988-bd862e3fe1be46a994272793"
    for bad in (None, b"", b"x" * 129, b"a b", b"a\nb", b'a"b', b"\xc3\xa9"):
        new = choose(bad)
        assert re.fullmatch(r"[0-9a-f]{32}", new), (bad, new)
    assert choose(None) != choose(None)


def test_fresh_ids_differ_between_forked_workers() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker forked from the master
        os.write(write, choose(None).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    parent = choose(None)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != parent[:16]  # another random prefix, so the counters cannot collide
