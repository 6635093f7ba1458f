"""An app whose /leak handler keeps LEAK_MB MiB of every request it answers (every page written), as a slow
leak or heap fragmentation does over hours."""

import os

KEPT = []
LEAK = int(os.environ.get("LEAK_MB", "4")) * 2**20


async def app(scope, receive, send):
    if scope["type"] != "http":  # no lifespan: Uvicorn carries on without it
        return
    if scope["path"] == "/leak":
        KEPT.append(b"\x01" * LEAK)
    body = f'{{"pid": {os.getpid()}}}'.encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
