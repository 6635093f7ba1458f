"""An app that does at import what breaks after a fork: starts a thread, opens a connection (a socket pair
stands in for a database connection) and creates an event loop."""

import asyncio
import socket
import threading
import time

POLLER = threading.Thread(target=lambda: time.sleep(3600), name="cache-refresher", daemon=True)
POLLER.start()
CONNECTION = socket.socketpair()
LOOP = asyncio.new_event_loop()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
