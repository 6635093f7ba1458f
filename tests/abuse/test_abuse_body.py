"""Slow request bodies against a real ``fastlaunch run``: a body trickling in is cut by BODY_TIMEOUT (408, or
the connection closed once answered), 200 such clients at once, while an upload that moves is served."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest
from abuse_kit import Server, read_until_closed, serve, status_of
from support import wait_until

BODY_TIMEOUT = 2
# Bytes a trickling client sends, every TRICKLE seconds: far below BODY_MIN_RATE (500 bytes/s by default).
TRICKLE = 0.5
# Every cut below comes within this many seconds of BODY_TIMEOUT (a timer, plus the trickle's own step).
SLACK = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"BODY_TIMEOUT": str(BODY_TIMEOUT), "KEEP_ALIVE": "30"}  # keep-alive long: the body timeout closes
    with serve(tmp_path_factory.mktemp("body") / "server.log", env) as running_server:
        yield running_server


def trickle(sock: socket.socket, *, seconds: float) -> tuple[bytes, bool, float]:
    """One body byte every TRICKLE seconds until the server answers or closes. Returns (what came back, closed,
    seconds taken)."""
    started = time.monotonic()
    data = b""
    while time.monotonic() - started < seconds:
        try:
            sock.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError):
            return data, True, time.monotonic() - started
        if select.select([sock], [], [], TRICKLE)[0]:
            more, closed = read_until_closed(sock, timeout=0.2)
            data += more
            if closed:
                return data, True, time.monotonic() - started
    return data, False, time.monotonic() - started


TRICKLED = {
    # The app reads the body: it is cut with 408.
    "read": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", 408),
    # The app answers GET / at once, without reading the body the client then trickles: the connection closes.
    "answered_unread": (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 200),
}


def cut(server: Server, shape: str) -> int:
    """Trickle the body of ``shape``: it is cut in time with its status, which this returns."""
    head, status = TRICKLED[shape]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        data, closed, seconds = trickle(sock, seconds=BODY_TIMEOUT + SLACK + 10)
    assert status_of(data) == status, data
    assert closed
    assert seconds < BODY_TIMEOUT + SLACK
    server.good()
    return status


@pytest.mark.parametrize("shape", TRICKLED)
def test_a_trickling_body_is_cut(server: Server, shape: str) -> None:
    # The access log says 408; the app's failed read of the body is not logged as an error.
    if cut(server, shape) == 408:
        assert wait_until(lambda: '"POST /echo HTTP/1.1" 408' in server.log.read_text(), timeout=10)
        assert "Traceback" not in server.log.read_text()


def test_an_upload_that_moves_outlasts_the_timeout(server: Server) -> None:
    chunk = b"y" * 16384
    chunks = 40  # 640 KiB over about twice BODY_TIMEOUT: slow, but far above BODY_MIN_RATE
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (len(chunk) * chunks))
        for _ in range(chunks):
            sock.sendall(chunk)
            time.sleep(BODY_TIMEOUT * 2 / chunks)
        sock.settimeout(10)
        data = b""
        while len(data) < len(chunk) * chunks:  # the echo: head and body
            more = sock.recv(1 << 20)
            if not more:
                break
            data += more
    assert status_of(data) == 200, data[:200]
    assert data.endswith(chunk)


def test_200_trickling_clients_are_all_cut_while_others_are_served(server: Server) -> None:
    shapes = [head for head, _ in TRICKLED.values()]
    socks = []
    try:
        for n in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(shapes[n % 2])
            sock.setblocking(False)
            socks.append(sock)
        started = time.monotonic()
        open_ = set(socks)
        while open_ and time.monotonic() - started < BODY_TIMEOUT + SLACK + 10:
            for sock in list(open_):
                try:
                    sock.send(b"x")
                    while sock.recv(65536):  # drain what the server said; b"": closed
                        pass
                    open_.discard(sock)
                except BlockingIOError:
                    pass
                except OSError:  # reset or broken pipe: closed
                    open_.discard(sock)
            server.good()  # others are served meanwhile
            time.sleep(TRICKLE)
        seconds = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert not open_, f"{len(open_)} of 200 trickling connections still open"
    assert seconds < BODY_TIMEOUT + SLACK + 4
    server.good()
