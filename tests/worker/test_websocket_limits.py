"""Uvicorn's WebSocket limits as fastlaunch settings, against a real `fastlaunch run`: a message over
WS_MAX_SIZE closes the connection (1009), and WS_PER_MESSAGE_DEFLATE=off declines compression."""

from __future__ import annotations

from pathlib import Path

import pytest
from hung import hung_app, serve
from support import free_port
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def test_a_message_over_ws_max_size_closes_the_connection(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, WS_MAX_SIZE="64K", WEB_CONCURRENCY="1"):
        with connect(f"ws://127.0.0.1:{port}/ws-echo", open_timeout=10) as ws:
            ws.send(b"x" * 60_000)  # under the limit: echoed
            assert ws.recv(timeout=10) == b"x" * 60_000
            ws.send(b"y" * 70_000)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


@pytest.mark.parametrize(("setting", "offered"), [("on", True), ("off", False)])
def test_ws_per_message_deflate(tmp_path: Path, setting: str, offered: bool) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, WS_PER_MESSAGE_DEFLATE=setting, WS_PING_INTERVAL="1", WEB_CONCURRENCY="1"):
        with connect(f"ws://127.0.0.1:{port}/ws-echo", open_timeout=10) as ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            ws.send(b"ping me")
            assert ws.recv(timeout=10) == b"ping me"
    assert ("permessage-deflate" in extensions) is offered
