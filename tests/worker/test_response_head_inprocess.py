"""The response head as the httptools protocol builds it from a header list it has seen before (worker/http_cycle.py
remembers what each list means for the head), over an in-memory connection (tests/inprocess_kit.py): every
response, the first and the repeats, says the same, and carries one X-Request-ID."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from inprocess_kit import Connection, request

from fastlaunch.worker import http_cycle
from fastlaunch.worker.middleware import ObservabilityMiddleware

HEX32 = re.compile(r"[0-9a-f]{32}")
BODY = b"hello"
LENGTH = (b"content-length", b"5")


def answering(status: int, headers: list[tuple[bytes, bytes]], chunks: int = 1) -> Any:
    """An app answering ``status`` with an equal (not the same) list of ``headers`` each time."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [*headers]})
        body = BODY if scope["method"] != "HEAD" else b""
        for n in range(chunks):
            await send({"type": "http.response.body", "body": body, "more_body": n < chunks - 1})

    return app


def served(app: Any, method: str = "GET", count: int = 3) -> list[tuple[Any, bool, bytes]]:
    """(response, whether the connection closed, raw bytes) for ``count`` requests, each on a fresh connection
    behind the worker's middleware: the first reads the header list, the others find it remembered."""

    async def scenario() -> list[tuple[Any, bool, bytes]]:
        found = []
        for _ in range(count):
            conn = Connection(ObservabilityMiddleware(app), proxy_headers=False)
            await conn.send(request(method))
            raw = bytes(conn.transport.buffer)
            (response,) = conn.responses(method)
            found.append((response, conn.closed, raw))
        return found

    return asyncio.run(scenario())


@pytest.mark.parametrize("status", [200, 503])
def test_a_declared_length_is_held_for_its_body_and_carries_one_fresh_id(status: int) -> None:
    answers = served(answering(status, [(b"content-type", b"text/plain"), LENGTH]))
    for response, closed, _ in answers:
        assert (response.status, response.body, closed) == (status, BODY, False)
        assert response.header("content-type") == "text/plain" and HEX32.fullmatch(response.header("x-request-id"))
    assert len({response.header("x-request-id") for response, _, _ in answers}) == len(answers)


def test_the_apps_own_request_id_is_the_only_one_each_time() -> None:
    for response, _, raw in served(answering(200, [(b"X-Request-ID", b"app-7"), LENGTH])):
        assert response.header("x-request-id") == "app-7" and raw.lower().count(b"x-request-id") == 1


def test_a_close_asked_for_closes_each_connection() -> None:
    for response, closed, _ in served(answering(200, [LENGTH, (b"connection", b"close")])):
        assert response.body == BODY and closed and response.header("connection") == "close"


def test_a_stream_without_a_length_is_chunked_each_time() -> None:
    for response, closed, raw in served(answering(200, [(b"content-type", b"text/plain")], chunks=2)):
        assert response.body == BODY * 2 and not closed and b"transfer-encoding: chunked\r\n" in raw
        assert HEX32.fullmatch(response.header("x-request-id"))


def test_a_head_response_has_its_length_and_id_and_no_body() -> None:
    for response, closed, raw in served(answering(200, [LENGTH]), "HEAD"):
        assert response.body == b"" and not closed and raw.endswith(b"\r\n\r\n")
        assert response.header("content-length") == "5" and HEX32.fullmatch(response.header("x-request-id"))


def test_a_draining_servers_close_applies_to_a_remembered_list() -> None:
    async def scenario() -> None:
        conn = Connection(ObservabilityMiddleware(answering(200, [LENGTH])), proxy_headers=False)
        await conn.send(request())
        assert not conn.closed and conn.responses("GET")[0].header("connection") is None
        defaults = conn.server_state.default_headers
        conn.server_state.default_headers = [*defaults, (b"connection", b"close")]  # as the draining worker does
        await conn.send(request())
        (response,) = conn.responses("GET")
        assert conn.closed and response.header("connection") == "close" and response.body == BODY

    asyncio.run(scenario())


def test_the_header_lists_remembered_are_bounded() -> None:
    async def scenario() -> None:
        conn = Connection(ObservabilityMiddleware(_numbered), proxy_headers=False)
        for n in range(http_cycle._MOST_FIELDS + 10):
            await conn.send(request("GET", f"/{n}"))
            assert conn.responses("GET")[0].header("x-n") == str(n)
            assert len(http_cycle._FIELDS) <= http_cycle._MOST_FIELDS

    asyncio.run(scenario())


async def _numbered(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"x-n", scope["path"][1:].encode()), LENGTH]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def test_servers_with_different_default_headers_each_send_their_own() -> None:
    """The default headers are joined once per list: two servers' lists, used in turn, each give their own head."""

    async def scenario() -> None:
        app = ObservabilityMiddleware(answering(200, [LENGTH]))
        draining, serving = (Connection(app, proxy_headers=False) for _ in range(2))
        defaults = draining.server_state.default_headers
        draining.server_state.default_headers = [*defaults, (b"connection", b"close")]
        for conn, closes in ((serving, False), (draining, True), (serving, False)):
            await conn.send(request())
            (response,) = conn.responses("GET")
            assert conn.closed is closes and response.header("connection") == ("close" if closes else None)

    asyncio.run(scenario())
