"""The Uvicorn server each worker runs: Uvicorn's own, with a shutdown that drops no accepted connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from uvicorn.server import Server

from fastlaunch.worker.internals import captured_signals_clearable, drain_supported

# Checked on import, in the master before it forks: a release that changed is named once, at start.
DRAIN, CLEAN_EXIT = drain_supported(), captured_signals_clearable()

# The longest a shutdown waits for clients to send the request they may already be sending.
DRAIN_GRACE = 1.5
# A keep-alive connection idle for this long is taken as idle, not as about to send its next request.
IDLE_AFTER = 0.25


class DrainingServer(Server):
    """Uvicorn closes every connection without a request in progress as soon as shutdown starts. On a reload
    or scale-down that resets clients: a connection accepted a moment before SIGTERM has usually not sent its
    request yet, and a keep-alive client may be sending its next one. Stop accepting first; then, for a
    bounded moment, serve what arrives with `Connection: close`, and close only connections really idle."""

    on_started: Callable[[], None] | None = None  # told once the app's lifespan startup is done and it listens

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not DRAIN:  # Uvicorn's own shutdown (internals.py has said why)
            await super().shutdown(sockets=sockets)
            self._exit_cleanly()
            return
        for server in self.servers:
            server.close()
        # Every response from now on announces the close, so keep-alive clients reconnect (to the workers
        # still listening) instead of reusing a connection this worker is about to close. Uvicorn refreshes
        # these headers only from its main loop, which has stopped.
        self.server_state.default_headers = [*self.server_state.default_headers, (b"connection", b"close")]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_GRACE
        while loop.time() < deadline and not self.force_exit and self._drain_step(loop.time()):
            await asyncio.sleep(0.02)
        await super().shutdown()  # not the listeners: closing the servers above has closed them
        self._exit_cleanly()

    def _exit_cleanly(self) -> None:
        # Uvicorn re-raises the signal it caught once serve() returns, so the worker died by SIGTERM before
        # its own clean-up ran (the access log's last lines, Gunicorn's worker_exit hook). A worker that has
        # shut down gracefully exits normally instead. (A private list, so looked up with care.)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list) and CLEAN_EXIT:
            captured.clear()

    def _drain_step(self, now: float) -> bool:
        """One pass over the connections; True while some may still send or receive a request."""
        waiting = False
        for connection in list(self.server_state.connections):
            conn: Any = connection
            cycle: Any = getattr(conn, "cycle", False)
            if cycle is False:  # not an HTTP/1 connection uvicorn tracks this way: leave it to uvicorn
                continue
            if cycle is None:  # accepted, request not read yet
                waiting = True
            elif not cycle.response_complete:
                waiting = True  # let it finish under the headers it started with
            else:
                idle_since = _idle_since(conn)
                if idle_since is None:  # the next request's headers are arriving
                    waiting = True
                elif now - idle_since >= IDLE_AFTER:
                    conn.transport.close()
                else:
                    waiting = True  # a keep-alive client may be sending its next request
        return waiting


def _idle_since(conn: Any) -> float | None:
    """Since when a connection has waited for its next request: the worker's protocol says; Uvicorn's own
    arms its keep-alive timer when a response completes and disarms it when data arrives."""
    if hasattr(conn, "idle_since"):
        since: float | None = conn.idle_since()
        return since
    timer = getattr(conn, "timeout_keep_alive_task", None)
    return None if timer is None else float(timer.when() - conn.timeout_keep_alive)
