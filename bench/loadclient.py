"""A small HTTP/1.1 keep-alive load client (asyncio, raw sockets) that records every request's fate.

Used by the reliability runs, where what matters is not speed but which requests fail and why. Like a
well-behaved client it opens a new connection when the server has closed an idle one; anything else that
goes wrong is a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.procs import HOST


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int  # 0 when no response came
    error: str  # "" when a response came


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def ok(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for o in self.outcomes if since <= o.started < until and 200 <= o.status < 300)

    def failed(self, since: float = 0.0, until: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if since <= o.started < until and not 200 <= o.status < 300]

    def kinds(self, outcomes: list[Outcome]) -> dict[str, int]:
        return dict(Counter(o.error or f"HTTP {o.status}" for o in outcomes))


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_body = b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None or self.reader.at_eof():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        headers = {key.strip().lower(): value.strip() for key, value in headers.items()}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        self.last_body = body
        return status, body


async def one(conn: Connection, path: str, timeout: float) -> Outcome:
    started = time.monotonic()
    try:
        status, _ = await asyncio.wait_for(conn.get(path), timeout)
        return Outcome(started, time.monotonic(), status, "")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
        await conn.close()
        kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Outcome(started, time.monotonic(), 0, kind)


async def hammer(
    port: int, paths: list[str], tally: Tally, *, stop: asyncio.Event, deadline: float, max_requests: int
) -> None:
    """One client per path, each sending requests back to back until stopped (bounded in time and count)."""

    async def client(path: str) -> None:
        conn = Connection(port)
        try:
            while not stop.is_set() and time.monotonic() < deadline and len(tally.outcomes) < max_requests:
                outcome = await one(conn, path, timeout=10.0)
                tally.outcomes.append(outcome)
                if outcome.error:
                    await asyncio.sleep(0.01)  # a refused connect would otherwise spin
        finally:
            await conn.close()

    await asyncio.gather(*(client(path) for path in paths))
