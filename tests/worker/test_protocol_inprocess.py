"""The worker's HTTP protocols (httptools: worker/http_protocol.py; h11: worker/h11_protocol.py) in process, over
an in-memory connection (tests/inprocess_kit.py): what a client sees of pipelining, HEAD, keep-alive, the head
limits and the client timeouts. The timeouts run on a clock the test moves: none of these waits for one.
tests/worker/test_http_protocol.py and tests/abuse/ keep what only a real server shows (write system calls,
sockets, the worker's settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from inprocess_kit import Connection, request, settle

from fastlaunch.worker.body_timeout import BodyLimits
from fastlaunch.worker.head_limits import HeadLimits

BOTH = pytest.mark.parametrize("protocol", ["httptools", "h11"])
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


async def answer(send: Send, content: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Answers the method, the path and the size of the body it read."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await answer(send, f"{scope['method']} {scope['path']} {size}".encode())


@BOTH
def test_a_request_is_answered_and_its_connection_kept(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        for path in ("/one", "/two"):
            await conn.send(request("GET", path))
            (response,) = conn.responses("GET")
            assert (response.status, response.body) == (200, f"GET {path} 0".encode())
            assert response.header("connection") is None
            assert not conn.closed

    run(scenario())


def test_a_response_with_a_declared_length_is_one_write() -> None:
    async def scenario() -> None:
        conn = Connection(echo)
        for size in (10, 100_000):  # copied onto the head, and handed next to it
            before = conn.transport.writes
            await conn.send(request("POST", "/", body=b"x" * size))
            (response,) = conn.responses("POST")
            assert response.body == f"POST / {size}".encode()
            assert conn.transport.writes - before == 1

    run(scenario())


@BOTH
def test_pipelined_requests_are_answered_in_order(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        await conn.send(request("GET", "/1") + request("POST", "/2", body=b"abc") + request("GET", "/3"))
        await settle()
        bodies = [r.body for r in conn.responses("GET", "POST", "GET")]
        assert bodies == [b"GET /1 0", b"POST /2 3", b"GET /3 0"]
        assert not conn.closed

    run(scenario())


@BOTH
def test_a_head_request_gets_the_headers_and_no_body(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        await conn.send(request("HEAD", "/x"))
        (response,) = conn.responses("HEAD")  # bytes after the head would fail here
        assert (response.status, response.body) == (200, b"")
        assert response.header("content-length") == str(len(b"HEAD /x 0"))
        await conn.send(request("GET", "/y"))  # and the connection serves the next request
        assert conn.responses("GET")[0].body == b"GET /y 0"

    run(scenario())


@BOTH
@pytest.mark.parametrize(
    ("head", "version"), [(("Connection: close",), "1.1"), ((), "1.0")], ids=["connection-close", "http-1.0"]
)
def test_a_client_that_does_not_keep_alive_has_its_connection_closed(
    protocol: str, head: tuple[str, ...], version: str
) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        await conn.send(request("GET", "/", *head, version=version))
        (response,) = conn.responses("GET")
        assert response.status == 200
        assert conn.closed

    run(scenario())


LIMITS = HeadLimits(request_line=100, fields=5, field_size=60, header_timeout=3)


@BOTH
@pytest.mark.parametrize(
    ("head", "status"),
    [
        (request("GET", "/" + "a" * 100), 414),
        (request("GET", "/", *(f"X-{n}: 1" for n in range(6))), 431),
        (request("GET", "/", "X-Big: " + "b" * 60), 431),
    ],
    ids=["request-line", "fields", "field-size"],
)
def test_a_head_over_a_limit_is_refused_and_its_connection_closed(protocol: str, head: bytes, status: int) -> None:
    called: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        called.append(scope["path"])
        await echo(scope, receive, send)

    async def scenario() -> None:
        conn = Connection(app, protocol, limits=LIMITS)
        await conn.send(head)
        (response,) = conn.responses("GET")
        assert response.status == status
        assert conn.closed
        assert not called

    run(scenario())


@BOTH
def test_a_head_within_the_limits_is_served(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, limits=LIMITS)
        await conn.send(request("GET", "/" + "a" * 60, *(f"X-{n}: 1" for n in range(3)), "X-Big: " + "b" * 40))
        assert conn.responses("GET")[0].status == 200

    run(scenario())


@BOTH
def test_a_head_growing_past_what_the_limits_allow_is_refused_before_it_ends(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, limits=LIMITS)
        await conn.send(b"GET / HTTP/1.1\r\nHost: example.org\r\n")
        assert LIMITS.head_bytes is not None
        for _ in range(LIMITS.head_bytes // 40 + 1):
            if conn.closed:
                break
            await conn.send(b"X-Filler: " + b"f" * 28 + b"\r\n")
        assert conn.closed
        assert conn.responses("GET")[0].status == 431

    run(scenario())


@BOTH
def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_time(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, timeout_keep_alive=5)
        await conn.loop.advance(4.9)
        assert not conn.closed
        await conn.loop.advance(0.2)
        assert conn.closed
        assert conn.transport.take() == b""

    run(scenario())


@BOTH
def test_an_idle_connection_between_requests_is_closed_after_the_keep_alive_time(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, timeout_keep_alive=5)
        await conn.loop.advance(4)
        await conn.send(request())
        assert conn.responses("GET")[0].status == 200
        await conn.loop.advance(4.9)  # the time starts over after the response
        assert not conn.closed
        await conn.loop.advance(0.2)
        assert conn.closed

    run(scenario())


@BOTH
def test_a_head_trickling_in_gets_408_at_the_header_timeout(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, limits=LIMITS, timeout_keep_alive=60)
        await conn.send(b"GET / HTTP/1.1\r\n")
        for _ in range(5):
            await conn.loop.advance(0.5)
            await conn.send(b"X-Slow: 1\r\n")  # each read in time, the whole head not
        assert not conn.closed
        await conn.loop.advance(0.6)
        assert conn.closed
        assert conn.responses("GET")[0].status == 408

    run(scenario())


SLOW_BODY = BodyLimits(timeout=4, min_rate=10)


def post_head(length: int) -> bytes:
    return f"POST /upload HTTP/1.1\r\nHost: example.org\r\nContent-Length: {length}\r\n\r\n".encode()


@BOTH
def test_a_body_that_stops_arriving_gets_408_at_the_body_timeout(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, body=SLOW_BODY)
        # What comes with the head is not counted: nearly every body arrives whole with it.
        await conn.send(post_head(100) + b"x" * 10)
        await conn.loop.advance(3.9)
        assert not conn.closed
        await conn.loop.advance(0.2)
        assert conn.closed
        assert conn.responses("POST")[0].status == 408

    run(scenario())


@BOTH
def test_a_body_arriving_at_the_minimum_rate_is_served(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol, body=SLOW_BODY)
        await conn.send(post_head(60))
        for _ in range(6):  # 60 bytes over 6 s: past the 4 s timeout, within its extension at 10 bytes/s
            await conn.loop.advance(1)
            await conn.send(b"y" * 10)
        assert conn.responses("POST")[0].body == b"POST /upload 60"
        assert not conn.closed

    run(scenario())


@BOTH
def test_100_continue_is_sent_when_the_app_reads_the_body(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        await conn.send(post_head(5).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        assert conn.transport.take().startswith(b"HTTP/1.1 100 Continue\r\n")
        await conn.send(b"hello")
        assert conn.responses("POST")[0].body == b"POST /upload 5"

    run(scenario())


@BOTH
def test_a_stream_has_its_head_sent_before_its_first_chunk(protocol: str) -> None:
    go = asyncio.Event()

    async def stream(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await go.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def scenario() -> None:
        conn = Connection(stream, protocol)
        await conn.send(request())
        assert bytes(conn.transport.buffer).endswith(b"\r\n\r\n")  # the head alone
        go.set()
        await settle()
        (response,) = conn.responses("GET")
        assert (response.header("transfer-encoding"), response.body) == ("chunked", b"data: 1\n\n")

    run(scenario())


@BOTH
def test_an_app_failing_before_its_response_gets_500(protocol: str) -> None:
    async def broken(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise RuntimeError("broken")

    async def scenario() -> None:
        conn = Connection(broken, protocol)
        await conn.send(request())
        assert conn.responses("GET")[0].status == 500

    run(scenario())


@BOTH
def test_an_app_failing_between_head_and_body_still_sends_the_head(protocol: str) -> None:
    async def half(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        raise RuntimeError("after the head")

    async def scenario() -> None:
        conn = Connection(half, protocol)
        await conn.send(request())
        written = conn.transport.take()
        assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b"\r\n\r\n"), written
        assert conn.closed

    run(scenario())


@BOTH
def test_a_response_longer_than_its_declared_length_closes_the_connection(protocol: str) -> None:
    async def liar(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"12345"})

    async def scenario() -> None:
        conn = Connection(liar, protocol)
        await conn.send(request())
        assert b"12345" not in conn.transport.take()
        assert conn.closed

    run(scenario())


@BOTH
def test_a_malformed_request_gets_400_and_its_connection_closed(protocol: str) -> None:
    async def scenario() -> None:
        conn = Connection(echo, protocol)
        await conn.send(b"NOT HTTP AT ALL\r\n\r\n")
        assert conn.responses("GET")[0].status == 400
        assert conn.closed

    run(scenario())


@BOTH
def test_a_client_leaving_mid_body_is_a_disconnect_for_the_app(protocol: str) -> None:
    seen: list[str] = []

    async def reader(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    async def scenario() -> None:
        conn = Connection(reader, protocol)
        await conn.send(post_head(100) + b"x" * 10)
        conn.protocol.eof_received()
        conn.protocol.connection_lost(None)
        await settle()
        assert seen[-1] == "http.disconnect"
        assert conn.transport.take() == b""  # nothing is written to a client that left
        assert conn.loop.pending() == 0  # and no timer outlives the connection

    run(scenario())


@BOTH
@pytest.mark.parametrize(
    "header",
    [(b"X-Fine", b"bad\nvalue"), (b"Bad Name", b"ok"), (b"X-Fine", bytearray(b"ok\x00")), (b"x-fine\r\n", b"ok")],
    ids=["value", "name", "bytearray-value", "name-with-newline"],
)
def test_a_response_header_the_syntax_forbids_is_refused_after_valid_ones_were_sent(
    protocol: str, header: tuple[bytes, bytes]
) -> None:
    """The httptools protocol checks each header name and short value once and remembers it: a header sent
    before (X-Fine: ok) passes, one it has not seen is checked. The app's send raises, as Uvicorn's does, and
    the connection closes without a response (the head had begun)."""

    def app_sending(*headers: tuple[bytes, bytes]) -> Any:
        async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": [*headers, (b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

        return app

    async def scenario() -> None:
        conn = Connection(app_sending((b"X-Fine", b"ok")), protocol)
        await conn.send(request())
        assert conn.responses("GET")[0].header("x-fine") == "ok"
        conn = Connection(app_sending((b"X-Fine", b"ok"), header), protocol)
        await conn.send(request())
        assert conn.closed and conn.transport.take() == b""

    run(scenario())


def test_the_header_names_and_values_remembered_are_bounded() -> None:
    from fastlaunch.worker import http_cycle

    headers = [(b"x-%d" % n, b"%d" % n) for n in range(2000)]

    async def many(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [*headers, (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario() -> None:
        conn = Connection(many)
        await conn.send(request())
        written = conn.transport.take()  # more headers than http.client reads
        assert written.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nx-1999: 1999\r\n" in written

    run(scenario())
    assert len(http_cycle._CHECKED_NAMES) <= http_cycle._MOST_CHECKED
    assert len(http_cycle._CHECKED_VALUES) <= http_cycle._MOST_CHECKED


async def version(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Answers the request's HTTP version, having read its body."""
    while (await receive()).get("more_body"):
        pass
    await answer(send, scope["http_version"].encode())


def test_each_heads_http_version_is_its_own_wherever_the_read_began() -> None:
    """The version of a read's first head is read off the read; every other head's comes from the parser. A 1.0
    head after a 1.1 one in the same read, or after a body whose bytes sit where a version would be, is 1.0."""

    async def scenario() -> None:
        conn = Connection(version)
        await conn.send(request("GET", "/") + request("GET", "/", version="1.0"))
        first, second = conn.responses("GET", "GET")
        assert (first.body, second.body, conn.closed) == (b"1.1", b"1.0", True)
        conn = Connection(version)
        await conn.send(request("POST", "/", body=b"x" * 16)[:-16])  # the head alone: its body follows
        await conn.send(b"xxxxxxHTTP/1.1\r\n" + request("GET", "/", version="1.0"))
        first, second = conn.responses("POST", "GET")
        assert (first.body, second.body, conn.closed) == (b"1.1", b"1.0", True)

    run(scenario())


def test_a_method_of_any_name_reaches_the_app_as_sent() -> None:
    async def scenario() -> None:
        conn = Connection(echo)
        for method in ("GET", "PURGE", "DELETE", "PROPFIND"):
            await conn.send(request(method, "/x"))
            assert conn.responses(method)[0].body == f"{method} /x 0".encode()

    run(scenario())
