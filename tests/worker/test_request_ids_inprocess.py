"""The request id and forwarded headers as the worker's middleware reads them, over an in-memory connection
(tests/inprocess_kit.py): what the app sees and what the client gets back, on the path that scans no further
than a set lookup per header and on the one that reads an incoming id or a trusted proxy's headers."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from inprocess_kit import Connection, request

from fastlaunch.request_id import Ids, get_request_id
from fastlaunch.worker.middleware import ObservabilityMiddleware

HEX32 = re.compile(r"[0-9a-f]{32}")


async def seen(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers what the app was given: its request id, its X-Request-ID headers, client and scheme."""
    ids = [v.decode() for n, v in scope["headers"] if n == b"x-request-id"]
    body = json.dumps([get_request_id(), ids, scope["client"][0], scope["scheme"]]).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def exchange(
    forwarded_allow_ips: str | None, *headers: str, count: int = 1, protocol: str = "httptools"
) -> list[tuple[list[Any], str | None]]:
    """(what the app saw, the response's X-Request-ID) for ``count`` requests with ``headers``."""

    async def scenario() -> list[tuple[list[Any], str | None]]:
        # Uvicorn's own proxy-headers layer off, as the worker runs it: the middleware reads them instead.
        app = ObservabilityMiddleware(seen, forwarded_allow_ips=forwarded_allow_ips)
        conn = Connection(app, protocol, proxy_headers=False)
        answers = []
        for _ in range(count):
            await conn.send(request("GET", "/", *headers))
            (response,) = conn.responses("GET")
            answers.append((json.loads(response.body), response.header("x-request-id")))
        return answers

    return asyncio.run(scenario())


@pytest.mark.parametrize("protocol", ["httptools", "h11"])  # the worker's cycle adds the id; a wrapped send does
def test_a_fresh_id_is_given_to_the_app_its_logs_and_the_client(protocol: str) -> None:
    answers = exchange("127.0.0.1", "User-Agent: test", count=300, protocol=protocol)  # more than one batch of ids
    for (request_id, ids, client, scheme), returned in answers:
        assert HEX32.fullmatch(request_id) and ids == [request_id] and returned == request_id
        assert (client, scheme) == ("127.0.0.1", "http")
    assert len({returned for _, returned in answers}) == 300


def test_an_incoming_id_is_kept_only_when_sane_and_single() -> None:
    [((request_id, ids, _, _), returned)] = exchange(None, "X-Request-ID: client-7")
    assert request_id == returned == "client-7" and ids == ["client-7"]
    for headers in (("X-Request-ID: a b",), ("X-Request-ID: one", "X-Request-ID: two")):
        [((request_id, ids, _, _), returned)] = exchange(None, *headers)
        assert HEX32.fullmatch(request_id) and ids == [request_id] and returned == request_id, headers


def test_forwarded_headers_apply_only_from_a_trusted_peer() -> None:
    forwarded = ("X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    [((request_id, _, client, scheme), _)] = exchange("127.0.0.1", *forwarded)
    assert (client, scheme) == ("203.0.113.9", "https") and HEX32.fullmatch(request_id)
    for untrusted in ("10.0.0.1", None):
        [((_, _, client, scheme), _)] = exchange(untrusted, *forwarded)
        assert (client, scheme) == ("127.0.0.1", "http"), untrusted


def test_fresh_ids_as_text_and_bytes_agree_and_never_repeat() -> None:
    ids = Ids()
    fresh = [ids.next_id() for _ in range(3 * 256 + 5)]
    assert all(header == (b"x-request-id", text.encode()) for text, header, _ in fresh)
    assert all(line == b"x-request-id: %s\r\n" % text.encode() for text, _, line in fresh)
    pairs = [ids.next_pair() for _ in range(3 * 256 + 5)]
    assert all(HEX32.fullmatch(text) and raw == text.encode() for text, raw in pairs)
    assert len({text for text, _ in pairs}) == len(pairs)
    assert len({text[:16] for text, _ in pairs}) == 1  # one process, one prefix: the counter tells them apart
