"""An open-loop HTTP/1.1 load generator: requests are sent at a constant rate whatever the server does, each
with a client deadline, as production traffic arrives (wrk is closed-loop: a connection sends its next request
only after the last answer, so a slow server slows its own load down and never sees a queue build).

Request *i* of a step is due at ``start + i / rate``. One sender task wakes for each due time and starts the
request as its own task: on an idle keep-alive connection if there is one, else on a new connection, so a
request never waits for an earlier one to finish. A request without a full response by its deadline is
counted as timed out and its connection closed. ``lag`` records how late the sends were against their due
times: a generator that cannot keep up shows it there rather than quietly offering less load.

Checked to be open-loop by ``tests/bench/test_openloop.py``: against a server that accepts and never
answers, every due request is still sent (and times out).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.procs import HOST

RECONNECT = 20  # requests per connection in closed_loop_rate


@dataclass(frozen=True)
class Fate:
    due: float  # seconds since the run started
    status: int  # 0: timed out or failed
    latency: float  # seconds from the send to the full response (or to the deadline)
    timed_out: bool


@dataclass
class Step:
    rate: float  # requests per second offered
    seconds: float
    fates: list[Fate] = field(default_factory=list)
    max_lag: float = 0.0  # the latest send against its due time, in seconds


class _Pool:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(HOST, self.port)

    def close_all(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """(status, keep-alive) of one request on a connection."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    keep = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def _one(pool: _Pool, request: bytes, deadline: float, due: float, fates: list[Fate]) -> None:
    sent = time.monotonic()
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        async with asyncio.timeout(deadline):
            conn = await pool.take()
            status, keep = await _exchange(*conn, request)
    except TimeoutError:
        fates.append(Fate(due, 0, deadline, True))
        if conn is not None:
            conn[1].close()
        return
    except (OSError, ValueError, asyncio.IncompleteReadError):
        fates.append(Fate(due, 0, time.monotonic() - sent, False))
        if conn is not None:
            conn[1].close()
        return
    fates.append(Fate(due, status, time.monotonic() - sent, False))
    if keep:
        pool.idle.append(conn)
    else:
        conn[1].close()


def _requests(port: int, paths: str | Sequence[str]) -> list[bytes]:
    """One GET per path; several paths are taken in turn."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    return [f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode() for path in paths]


async def run_steps(port: int, paths: str | Sequence[str], steps: list[Step], *, deadline: float = 1.0) -> None:
    """Offers each step's rate for its seconds, one after another, and waits for the last deadlines."""
    requests = _requests(port, paths)
    sent = 0
    pool = _Pool(port)
    tasks: set[asyncio.Task[None]] = set()
    origin = time.monotonic()
    offset = 0.0
    for step in steps:
        count = int(step.rate * step.seconds)
        for i in range(count):
            due = offset + i / step.rate
            delay = origin + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                step.max_lag = max(step.max_lag, -delay)
            request = requests[sent % len(requests)]
            sent += 1
            task = asyncio.get_running_loop().create_task(_one(pool, request, deadline, due, step.fates))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        offset += step.seconds
    if tasks:
        await asyncio.wait(tasks, timeout=deadline + 5)
    pool.close_all()


async def closed_loop_rate(
    port: int, paths: str | Sequence[str], *, connections: int, seconds: float, reconnect: int = RECONNECT
) -> float:
    """Answers per second with ``connections`` clients each sending its next request when the last is answered:
    the server's capacity, to scale the open-loop steps by. Each client opens a new connection every
    ``reconnect`` requests: connections opened at once are mostly accepted by one worker (the first to wake
    takes every pending one), and kept alive they would measure that worker alone; a new connection is
    accepted by a worker with time for it, as the open-loop steps' connections are."""
    requests = _requests(port, paths)
    end = time.monotonic() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        n = 0
        while time.monotonic() < end:
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                for _ in range(reconnect):
                    if time.monotonic() >= end:
                        break
                    status, _ = await _exchange(reader, writer, requests[n % len(requests)])
                    n += 1
                    done += 200 <= status < 300
            finally:
                writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)), return_exceptions=True)
    return done / (time.monotonic() - started)
