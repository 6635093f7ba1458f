"""An app that holds a "model" allocated at import: MODEL_MB MiB of bytes (every page written) and a lookup
table of small objects, the kind of heap the collector and refcounts touch. Each importing process appends its
PID to ./imported-by, so a test can tell who imported it."""

import os
import pathlib

MODEL = b"\x07" * (int(os.environ.get("MODEL_MB", "300")) * 2**20)
TABLE = {n: str(n) for n in range(int(os.environ.get("TABLE_SIZE", "200000")))}
with pathlib.Path("imported-by").open("a") as f:
    f.write(f"{os.getpid()}\n")


async def app(scope, receive, send):
    if scope["type"] != "http":  # no lifespan: Uvicorn carries on without it
        return
    n = int(scope["path"].strip("/") or 0)
    body = f'{{"pid": {os.getpid()}, "byte": {MODEL[n % len(MODEL)]}, "entry": "{TABLE.get(n, "")}"}}'.encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
