"""Hostile HTTP against a real ``fastlaunch run`` on 127.0.0.1: smuggling shapes, oversized heads, slow heads,
HEAD on an endless stream, forged forwarded addresses and request ids. Each attack asserts what was served and
that the next plain request still succeeds."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from abuse_kit import Server, exchange, read_until_closed, serve, status_of
from support import wait_until

# Short timeouts so that the slow-client tests finish quickly; every bound below is generous against them.
HEADER_TIMEOUT = 2
KEEP_ALIVE = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "KEEP_ALIVE": str(KEEP_ALIVE),
        # What the k8s ConfigMap and app.yaml ship: every peer is a trusted proxy.
        "FORWARDED_ALLOW_IPS": "*",
    }
    with serve(tmp_path_factory.mktemp("http") / "server.log", env) as running_server:
        yield running_server


H = b"Host: x\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def post(headers: bytes, body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\n" + H + headers + b"\r\n" + body


SMUGGLING = {
    "cl_te": post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_cl": post(b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", b"0\r\n\r\n" + SMUGGLED),
    "two_cl": post(b"Content-Length: 0\r\nContent-Length: 37\r\n", SMUGGLED),
    "cl_list": post(b"Content-Length: 0, 37\r\n", SMUGGLED),
    "cl_plus": post(b"Content-Length: +0\r\n", SMUGGLED),
    "cl_negative": post(b"Content-Length: -1\r\n", SMUGGLED),
    "te_twice": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_xchunked": post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_chunked_identity": post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_space_before_colon": post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_vertical_tab": post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te_folded": post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "chunk_size_overflow": post(b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffff0\r\n\r\n" + SMUGGLED),
    "chunk_bare_lf": post(b"Transfer-Encoding: chunked\r\n", b"0\n\n" + SMUGGLED),
    "header_bare_cr": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n" + SMUGGLED,
    "header_nul": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n" + SMUGGLED,
    "name_with_space": b"GET / HTTP/1.1\r\nHost: x\r\nFoo Bar: x\r\n\r\n" + SMUGGLED,
    "bad_version": b"GET / HTTP/1.1x\r\nHost: x\r\n\r\n" + SMUGGLED,
    "lf_only_request": b"GET / HTTP/1.1\nHost: x\nContent-Length: 37\n\n" + SMUGGLED,
}


@pytest.mark.parametrize("shape", SMUGGLING)
def test_smuggling_shape_is_rejected_and_the_worker_lives(server: Server, shape: str) -> None:
    workers = server.workers()
    data, closed = exchange(server.port, SMUGGLING[shape], timeout=10)
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3})", data, re.M)
    assert statuses == [b"400"], data  # one answer, a refusal: the smuggled GET was never served
    assert closed
    server.good()
    assert server.workers() == workers


LIMITS = {
    # Gunicorn's defaults: limit_request_line 4094, limit_request_fields 100, limit_request_field_size 8190.
    # Each head is otherwise valid (it has its Host), so that it is refused for its size alone.
    "request_line": (b"GET /" + b"a" * 4100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "too_many_fields": (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    "field_too_large": (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 8200 + b"\r\n\r\n", 431),
    "header_100kb": (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 100_000 + b"\r\n\r\n", 431),
    "headers_10000": (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + b"\r\n", 431),
}


@pytest.mark.parametrize("attack", LIMITS)
def test_oversized_heads_are_refused_and_closed(server: Server, attack: str) -> None:
    request, expected = LIMITS[attack]
    workers = server.workers()
    try:
        data, closed = exchange(server.port, request, timeout=10)
    except (BrokenPipeError, ConnectionResetError):  # closed while we were still sending: read nothing back
        pytest.fail("the server reset the connection before answering")
    assert status_of(data) == expected, data[:200]
    assert b"connection: close" in data.lower()
    assert closed
    server.good()
    assert server.workers() == workers


def test_heads_within_the_limits_are_served(server: Server) -> None:
    headers = {f"x-{i}": "v" for i in range(90)} | {"x-big": "v" * 8000}
    assert httpx.get(f"{server.url}/{'a' * 4000}", headers=headers, timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/", headers=headers, timeout=10).status_code == 200


def test_head_on_an_endless_stream_answers_at_once(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(4)  # a head held for the body would wait forever: HEAD never gets one
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"text/event-stream" in head
    server.good()


def test_slowloris_head_gets_408_and_is_closed(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        # One header byte at a time, each well within any idle timeout, never finishing the head.
        for _ in range(HEADER_TIMEOUT * 4 + 20):
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if _readable(sock):
                break
            time.sleep(0.25)
        data, closed = read_until_closed(sock, timeout=5)
        elapsed = time.monotonic() - started
    assert status_of(data) == 408, data
    assert closed
    assert elapsed < HEADER_TIMEOUT + 5  # closed by the head timeout, not by anything slower
    server.good()


def test_a_connection_that_sends_nothing_is_closed_after_keep_alive(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        data, closed = read_until_closed(sock, timeout=KEEP_ALIVE + 8)
    assert (data, closed) == (b"", True)


def test_one_request_id_per_request(server: Server) -> None:
    def seen(*ids: str) -> tuple[dict[str, object], str]:
        response = httpx.get(f"{server.url}/seen", headers=[("x-request-id", i) for i in ids], timeout=10)
        return response.json(), response.headers["x-request-id"]

    body, returned = seen("first-id", "second-id")  # the app saw the first, the log had the last
    assert body["header_ids"] == [returned] and body["context_id"] == returned
    assert returned not in ("first-id", "second-id")
    body, returned = seen("bad id with spaces")
    assert body["header_ids"] == [returned] == [body["context_id"]]
    body, returned = seen()
    assert body["header_ids"] == [returned] == [body["context_id"]]
    body, returned = seen("good-id")
    assert body["header_ids"] == ["good-id"] and body["context_id"] == returned == "good-id"
    assert wait_until(lambda: returned in server.log.read_text(), timeout=5)


def test_forwarded_for_cannot_forge_the_access_log(server: Server) -> None:
    forged = '6.6.6.6" 200 "x" request_id=forged, 203.0.113.9'
    response = httpx.get(f"{server.url}/seen", headers={"x-forwarded-for": forged}, timeout=10)
    # With every peer trusted, the client is what the peer itself appended (rightmost), not client text.
    assert response.json()["client"] == "203.0.113.9"
    response = httpx.get(f"{server.url}/seen", headers={"x-forwarded-for": "6.6.6.6, 198.51.100.7"}, timeout=10)
    assert response.json()["client"] == "198.51.100.7"
    response = httpx.get(f"{server.url}/seen", headers={"x-forwarded-for": '1.2.3.4" x=y'}, timeout=10)
    assert response.json()["client"] == "127.0.0.1"  # not an address: the peer's own stays
    assert wait_until(lambda: "198.51.100.7" in server.log.read_text(), timeout=5)
    text = server.log.read_text()
    assert "request_id=forged" not in text
    assert '"x" request_id' not in text
    server.good()


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])
