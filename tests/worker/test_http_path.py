"""The worker's httptools protocol per request, in process over an in-memory transport: what it no longer does for
every request (a keep-alive timer, an Event), and that the idle bound it keeps instead still closes connections."""

from __future__ import annotations

import asyncio
from typing import Any

from inprocess_kit import MemoryTransport
from uvicorn.config import Config
from uvicorn.server import ServerState

from fastlaunch.worker.http_cycle import NO_WAITER
from fastlaunch.worker.http_protocol import HttpToolsOneWriteProtocol
from fastlaunch.worker.middleware import ObservabilityMiddleware

REQUEST = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"
BODY = b'{"ok":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


class CountingLoop:
    """The running loop, counting the timers the protocol arms."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.timers = 0

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        self.timers += 1
        return self._loop.call_later(delay, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def connect(loop: Any, keep_alive: float = 5) -> tuple[Any, MemoryTransport]:
    config = Config(app=ObservabilityMiddleware(app), http=HttpToolsOneWriteProtocol, proxy_headers=False)
    config.timeout_keep_alive = keep_alive  # type: ignore[assignment]  # a fraction of a second, for the test
    config.load()
    protocol: Any = HttpToolsOneWriteProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = MemoryTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def serve_one(protocol: Any) -> Any:
    protocol.data_received(REQUEST)
    cycle = protocol.cycle
    for _ in range(100):
        if cycle.response_complete:
            return cycle
        await asyncio.sleep(0)
    raise AssertionError("no response")


def test_a_keep_alive_connection_arms_one_timer_not_one_per_request() -> None:
    asyncio.run(_one_timer())


async def _one_timer() -> None:
    loop = CountingLoop(asyncio.get_running_loop())
    protocol, transport = connect(loop)
    for _ in range(50):
        cycle = await serve_one(protocol)
        assert cycle.message_event is NO_WAITER  # no Event made for a request whose app never waits
        assert cycle.status == 200 and cycle.id_line.startswith(b"x-request-id: ")
    assert transport.writes == 50  # one per response
    assert loop.timers == 1  # the connection's keep-alive timer, armed when it was made
    assert not transport.closing


def test_an_idle_connection_is_closed_after_the_keep_alive_time_and_a_busy_one_is_not() -> None:
    asyncio.run(_idle_close())


async def _idle_close() -> None:
    protocol, transport = connect(asyncio.get_running_loop(), keep_alive=30)
    await serve_one(protocol)
    protocol.timeout_keep_alive_handler()  # the connection's timer firing early: it waits for the rest
    assert not transport.closing and protocol.timeout_keep_alive_task is not None
    protocol, transport = connect(asyncio.get_running_loop(), keep_alive=0.05)
    await serve_one(protocol)
    assert protocol.idle_since() is not None
    for _ in range(500):  # bounded: 5 s
        if transport.closing:
            break
        await asyncio.sleep(0.01)
    assert transport.closing
