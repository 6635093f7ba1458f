"""The worker's HTTP protocols served in process, as Uvicorn tests its own: a connection over an in-memory
transport (bench/memory_transport.py, the one ``bench.inprocess`` measures over) and timers on a clock the test
moves, so a timeout is tested without waiting for it. Tests go through what a transport sees of a protocol
(connection_made, data_received, eof_received, connection_lost; the writes and the close) and nothing else."""

from __future__ import annotations

import asyncio
import contextvars
import http.client
import io
import sys
from collections.abc import Callable
from typing import Any

from support import ROOT
from uvicorn.config import Config
from uvicorn.server import ServerState

sys.path.insert(0, str(ROOT))  # the repository's bench package

from bench.memory_transport import MemoryTransport as MemoryTransport  # noqa: E402 - for the tests
from bench.memory_transport import RecordingTransport  # noqa: E402
from fastlaunch.worker.body_timeout import BodyLimits  # noqa: E402
from fastlaunch.worker.h11_protocol import H11LimitsProtocol  # noqa: E402
from fastlaunch.worker.head_limits import HeadLimits  # noqa: E402
from fastlaunch.worker.http_protocol import HttpToolsOneWriteProtocol  # noqa: E402

PROTOCOLS: dict[str, type[HttpToolsOneWriteProtocol] | type[H11LimitsProtocol]] = {
    "httptools": HttpToolsOneWriteProtocol,
    "h11": H11LimitsProtocol,
}
DEFAULT_LIMITS, DEFAULT_BODY = HeadLimits(), BodyLimits()  # the worker's defaults


class Timer:
    """asyncio.TimerHandle's face: ``when()``, ``cancel()``."""

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.due, self.callback, self.args = when, callback, args
        self.cancelled = False

    def when(self) -> float:
        return self.due

    def cancel(self) -> None:
        self.cancelled = True


class ClockLoop:
    """The running loop for tasks; ``call_later`` and ``time`` on a clock that moves only in ``advance``."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._now = 0.0
        self._timers: list[Timer] = []

    def time(self) -> float:
        return self._now

    def create_task(self, coro: Any, *, context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        return self._loop.create_task(coro, context=context)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        timer = Timer(self._now + delay, callback, args)
        self._timers.append(timer)
        return timer

    def pending(self) -> int:
        return sum(not timer.cancelled for timer in self._timers)

    async def advance(self, seconds: float) -> None:
        """Moves the clock by ``seconds``, firing each timer due on the way at its own time, in order."""
        end = self._now + seconds
        while True:
            due = [t for t in self._timers if not t.cancelled and t.due <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.due)
            self._timers.remove(timer)
            self._now = max(self._now, timer.due)
            timer.callback(*timer.args)
            await settle()
        self._now = end


async def settle() -> None:
    """Lets every task that can run do so (the app, the protocol's cycle), as a loop would between reads."""
    for _ in range(20):
        await asyncio.sleep(0)


class Connection:
    """One client connection to a protocol instance; ``send`` is a read arriving from the client."""

    def __init__(
        self,
        app: Any,
        protocol: str = "httptools",
        *,
        limits: HeadLimits = DEFAULT_LIMITS,
        body: BodyLimits = DEFAULT_BODY,
        **config: Any,
    ) -> None:
        self.loop = ClockLoop()
        settings: dict[str, Any] = {"access_log": False, "log_config": None, "lifespan": "off", **config}
        cls = PROTOCOLS[protocol].with_limits(limits, body)
        uvicorn_config = Config(app=app, http=cls, **settings)
        uvicorn_config.load()
        self.server_state = ServerState()
        self.protocol: Any = cls(
            config=uvicorn_config,
            server_state=self.server_state,
            app_state={},
            _loop=self.loop,
        )
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]  # duck-typed, as in bench.inprocess

    async def send(self, data: bytes) -> None:
        self.protocol.data_received(data)
        await settle()

    @property
    def closed(self) -> bool:
        return self.transport.closing

    def responses(self, *methods: str) -> list[Response]:
        """The responses written since the last call, one per request method given, in order."""
        return parse(self.transport.take(), *methods)


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times: {self.headers}"
        return values[0] if values else None


class _Stream(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after each response; the next one follows in it
        pass


class _Socket:
    def __init__(self, stream: io.BytesIO) -> None:
        self.stream = stream

    def makefile(self, mode: str) -> io.BytesIO:
        return self.stream


def parse(data: bytes, *methods: str) -> list[Response]:
    """Responses one after another on one connection, read as a client reads them (http.client)."""
    stream = _Stream(data)
    found = []
    for method in methods:
        response = http.client.HTTPResponse(_Socket(stream), method=method)  # type: ignore[arg-type]
        response.begin()
        found.append(Response(response.status, response.getheaders(), response.read()))
    rest = stream.read()
    assert not rest, f"bytes after the responses: {rest[:200]!r}"
    return found


def request(method: str = "GET", path: str = "/", *headers: str, body: bytes = b"", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: example.org", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
