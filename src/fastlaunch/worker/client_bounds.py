"""What the worker's HTTP protocols (httptools: worker/http_protocol.py; h11: worker/h11_protocol.py) share in
bounding a client: the idle time of a connection that sends nothing, the refusal of a head, and the watch over a
body that arrives slowly (worker/body_timeout.py). Each protocol says when a head or body is incomplete."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastlaunch.worker.body_timeout import BodyLimits, BodyWatch
from fastlaunch.worker.head_limits import HeadLimits, refusal

if TYPE_CHECKING:
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.server import ServerState


class ClientBounds(asyncio.Protocol):
    """Mixed into a Uvicorn protocol, before it."""

    limits = HeadLimits()
    body_limits = BodyLimits()
    _body_watch: BodyWatch | None = None  # the last body incomplete past the read that carried its head
    _head_timer: asyncio.TimerHandle | None = None

    if TYPE_CHECKING:  # the Uvicorn protocol's
        loop: asyncio.AbstractEventLoop
        transport: asyncio.Transport
        flow: FlowControl
        server_state: ServerState
        timeout_keep_alive: int
        timeout_keep_alive_task: asyncio.TimerHandle | None

        def timeout_keep_alive_handler(self) -> None: ...

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Uvicorn arms its keep-alive timer only after a response: a connection that never sends a byte
        # stayed open forever. It gets the keep-alive time, as an idle connection between requests does.
        idle = self.timeout_keep_alive or self.limits.header_timeout
        if idle:
            self.timeout_keep_alive_task = self.loop.call_later(idle, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._body_watch is not None:
            self._body_watch.cancel()
            self._body_watch = None
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse_now(self, status: int, reason: bytes) -> None:
        self._stop_head_timer()
        self.transport.write(refusal(status, reason, self.server_state.default_headers))
        self.transport.close()

    def _watch_body(self, cycle: Any, size: int) -> None:
        # A watch that is not ended when its body completes (or the next request follows) finds so when its
        # timer fires: ending it here would cost every request a look.
        watch = self._body_watch
        if watch is not None and watch.cycle is cycle:
            watch.received += size
        elif not cycle.response_complete and self.body_limits.timeout and not self.transport.is_closing():
            if watch is not None:
                watch.cancel()
            self._body_watch = BodyWatch(self, cycle, self.body_limits)

    def _reading_paused(self) -> bool:
        return bool(self.flow.read_paused)

    def _body_timed_out(self) -> None:
        raise NotImplementedError
