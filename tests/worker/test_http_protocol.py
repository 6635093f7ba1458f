"""fastlaunch.worker.http_protocol under a real ``fastlaunch run`` on 127.0.0.1: a response's head leaves with its
body in one write, and nothing the old two-write order guaranteed is lost (streaming heads, 100 Continue,
large bodies, pipelining, a failure between head and body)."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, child_pids, free_port, running

APP = ASSETS / "protocol"
BIG = bytes(range(256)) * 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """(port, worker pid, marker dir) of one fastlaunch run with one worker and no access log."""
    markers = tmp_path_factory.mktemp("markers")
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "ACCESS_LOG": "", "MARKER_DIR": str(markers)}
    log = tmp_path_factory.mktemp("log") / "server.log"
    with running([FASTLAUNCH, "run"], cwd=APP, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/") as proc:
        (worker,) = child_pids(proc.pid)
        yield port, worker, markers


def write_calls(pid: int) -> int:
    """The write system calls the process has made (all its threads)."""
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError as exc:
        pytest.skip(f"/proc/{pid}/io is not readable here ({exc}); it counts the worker's write calls")
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("syscw:")))


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes or 10 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_each_response_is_one_write(server: tuple[int, int, Path]) -> None:
    port, worker, _ = server
    count = 200
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")  # the connection is open and the worker warm before counting
    conn.getresponse().read()
    before = write_calls(worker)
    for _ in range(count):
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b'{"ok":true}')
    after = write_calls(worker)
    conn.close()
    # Uvicorn's own protocol makes two writes per response (head, then body): 2 * count.
    assert count <= after - before < 1.5 * count


def test_bodies_arrive_whole(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        big = client.get("/big")
        assert big.headers["content-length"] == str(len(BIG)) and big.content == BIG
        empty = client.get("/empty")
        assert (empty.status_code, empty.content) == (204, b"")
        assert client.get("/").json() == {"ok": True}  # the connection is still in step after both


def test_a_head_request_is_answered_though_its_body_is_never_written(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(2):  # on a kept-alive connection: a held head would only leave with the next response
        conn.request("HEAD", "/head")
        response = conn.getresponse()
        assert (response.status, response.getheader("content-length"), response.read()) == (200, "12", b"")
    conn.request("GET", "/head")
    assert conn.getresponse().read() == b"twelve bytes"
    conn.close()


def test_a_streaming_response_sends_its_head_before_the_first_chunk(server: tuple[int, int, Path]) -> None:
    port, _, markers = server
    with httpx.Client(timeout=10) as client, client.stream("GET", f"http://127.0.0.1:{port}/stream") as response:
        # The app sends no chunk until it sees the marker, so a held head would time out here.
        assert response.status_code == 200 and response.headers["transfer-encoding"] == "chunked"
        (markers / "go").touch()
        assert response.read() == b"first chunk;second chunk"


def test_100_continue_goes_out_before_the_body_is_sent(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        response = b""
        while not response.endswith(b"hello"):
            chunk = sock.recv(65536)
            assert chunk, f"closed early: {response!r}"
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_answered_in_order(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    one = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
    two = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
    last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = raw_exchange(port, one + two + one + last)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert bodies == [b"one", b"two", b"one", b'{"ok":true}']


def test_a_failure_between_head_and_body_still_sends_the_head(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    # As with Uvicorn's own protocol: the head the app started, then the connection closes, short of the
    # declared 10 bytes, so the client knows the response is broken.
    data = raw_exchange(port, b"GET /fail-after-head/ HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 10" in head and body == b""


def request_ids(head: bytes) -> list[bytes]:
    lines = head.split(b"\r\n")[1:]
    return [line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(b"x-request-id:")]


@pytest.mark.parametrize(
    "request_line",
    [b"GET / HTTP/1.1", b"GET /big HTTP/1.1", b"GET /empty HTTP/1.1", b"HEAD /head HTTP/1.1", b"GET /nope HTTP/1.1"],
)
def test_every_response_carries_one_request_id(server: tuple[int, int, Path], request_line: bytes) -> None:
    # The protocol adds the id itself: held heads, heads sent at once (HEAD, 204) and the app's own 404 alike.
    port, _, _ = server
    data = raw_exchange(port, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    ids = request_ids(data.partition(b"\r\n\r\n")[0])
    assert len(ids) == 1 and re.fullmatch(rb"[0-9a-f]{32}", ids[0]), ids


def test_an_id_the_app_sets_is_kept_and_not_doubled(server: tuple[int, int, Path]) -> None:
    port, _, _ = server
    data = raw_exchange(port, b"GET /own-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert request_ids(head) == [b"chosen-by-the-app"] and body == b"mine"
