"""REQUEST_TIMEOUT's middleware (worker/deadline.py) in process: what the app and the client see when a request
passes its deadline, with a deadline of a tenth of a second. tests/worker/test_deadline.py keeps what a real
server shows (the metric, the access log, the worker serving on, a WebSocket)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from inprocess_kit import Connection, request

from fastlaunch.worker.deadline import TIMED_OUT, RequestDeadline

SECONDS = 0.1  # swept every 0.05 s: a request is cut 0.1-0.15 s after it began
LONG = 5.0  # far past the deadline, never reached by a request that is cut
Message = dict[str, Any]


class Counted:
    """Where the middleware counts a timeout (prometheus_client's counter in a worker)."""

    def __init__(self) -> None:
        self.routes: list[str] = []

    def inc(self, route: str) -> None:
        self.routes.append(route)


async def call(app: Any, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str = "/slow") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": []}


def test_a_handler_waiting_forever_gets_504_and_its_finally_runs(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    async def forever(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            seen.append("cancelled")  # not left to finish on its own
            raise
        finally:
            seen.append("cleaned up")

    counter = Counted()
    scope = http_scope()
    with caplog.at_level(logging.WARNING, "fastlaunch.worker"):
        sent = asyncio.run(call(RequestDeadline(forever, SECONDS, counter=counter), scope))  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 504
    assert sent[1]["body"] == b"Request timed out after 0.1s (REQUEST_TIMEOUT)\n"
    assert seen == ["cancelled", "cleaned up"]
    assert scope[TIMED_OUT] is True
    assert counter.routes == ["unmatched"]  # a bare app has no route templates
    assert "Request GET /slow (route unmatched) cancelled after REQUEST_TIMEOUT=0.1s; answered 504" in caplog.text


def test_a_handler_that_catches_the_cancellation_and_answers_keeps_its_answer() -> None:
    async def catches(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"4")]})
            await send({"type": "http.response.body", "body": b"busy"})

    scope = http_scope()
    sent = asyncio.run(call(RequestDeadline(catches, SECONDS), scope))
    assert [m.get("status", m.get("body")) for m in sent] == [503, b"busy"]
    assert TIMED_OUT not in scope


def test_a_quick_request_is_untouched() -> None:
    async def quick(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = http_scope()
    sent = asyncio.run(call(RequestDeadline(quick, SECONDS), scope))
    assert [m.get("status", m.get("body")) for m in sent] == [200, b"ok"]
    assert TIMED_OUT not in scope


def test_a_stream_outlives_the_deadline() -> None:
    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # no length: chunked
        for n in range(4):
            await asyncio.sleep(SECONDS)
            await send({"type": "http.response.body", "body": b"%d" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope()
    sent = asyncio.run(call(RequestDeadline(stream, SECONDS), scope))
    assert b"".join(m.get("body", b"") for m in sent) == b"0123"
    assert TIMED_OUT not in scope


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_websockets_and_lifespan_pass_through(kind: str) -> None:
    async def lasting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(SECONDS * 3)
        await send({"type": "done"})

    sent = asyncio.run(call(RequestDeadline(lasting, SECONDS), {"type": kind}))
    assert sent == [{"type": "done"}]


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_deadline() -> None:
    async def sleeper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(LONG)

    async def shutdown() -> None:
        task = asyncio.create_task(call(RequestDeadline(sleeper, 60), http_scope()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(shutdown())


def test_over_the_protocol_the_client_gets_504_and_keeps_its_connection() -> None:
    async def forever(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(LONG)

    async def scenario() -> None:
        conn = Connection(RequestDeadline(forever, SECONDS))
        await conn.send(request())
        await asyncio.wait_for(until_written(conn), LONG)
        (response,) = conn.responses("GET")
        assert response.status == 504
        assert not conn.closed

    asyncio.run(scenario())


def test_over_the_protocol_a_response_started_without_its_body_closes_the_connection() -> None:
    async def half(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await asyncio.sleep(LONG)

    async def scenario() -> None:
        conn = Connection(RequestDeadline(half, SECONDS))
        await conn.send(request())
        await asyncio.wait_for(until_closed(conn), LONG)
        written = conn.transport.take()
        assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b"\r\n\r\n"), written  # no body

    asyncio.run(scenario())


async def until_written(conn: Connection) -> None:
    while not conn.transport.buffer:
        await asyncio.sleep(0.01)


async def until_closed(conn: Connection) -> None:
    while not conn.closed:
        await asyncio.sleep(0.01)
