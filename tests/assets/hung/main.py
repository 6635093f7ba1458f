"""The app of the hung/slow/rolling tests: handlers that wait forever, block the loop, stream, start slowly."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse

from fastlaunch.probes import Probes

MARKS = Path(os.environ.get("MARKS_DIR", "."))


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await asyncio.sleep(float(os.environ.get("STARTUP_SECONDS", "0")))  # a model loading, say
    if os.environ.get("STARTUP_IMPORT"):  # a model loaded the blocking way, at import
        importlib.import_module(os.environ["STARTUP_IMPORT"])
    yield


app = FastAPI(lifespan=lifespan)
Probes().install(app)


@app.get("/")
async def root() -> PlainTextResponse:
    return PlainTextResponse("ok")


@app.get("/forever")
async def forever() -> PlainTextResponse:
    try:
        await asyncio.Event().wait()  # an upstream that never answers
    finally:
        (MARKS / "forever-cleaned-up").touch()
    return PlainTextResponse("unreachable")


@app.get("/catches")
async def catches() -> PlainTextResponse:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        (MARKS / "catches-saw-cancel").touch()
        raise
    return PlainTextResponse("unreachable")


@app.get("/stream")
async def stream(chunks: int = 6, every: float = 0.5) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for n in range(chunks):
            yield f"chunk {n}\n".encode()
            await asyncio.sleep(every)

    return StreamingResponse(body(), media_type="text/plain")


@app.get("/block")
async def block(seconds: float = 2.0) -> PlainTextResponse:
    time.sleep(seconds)  # the mistake the watchdog names: blocking I/O in an async handler
    return PlainTextResponse("done")


@app.get("/import")
async def import_module(name: str) -> PlainTextResponse:
    importlib.import_module(name)  # a blocking import inside a request
    return PlainTextResponse("imported")


@app.get("/sync-sleep")
def sync_sleep(seconds: float = 20.0) -> PlainTextResponse:
    time.sleep(seconds)  # a sync handler (run in the thread pool) stuck on a call that never times out
    return PlainTextResponse("done")


@app.websocket("/ws-echo")
async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    while True:
        await websocket.send_bytes(await websocket.receive_bytes())


@app.websocket("/ws")
async def ws(websocket: WebSocket, wait: float = 2.0):
    """Answers after `wait` seconds, however long REQUEST_TIMEOUT is."""
    await websocket.accept()
    await asyncio.sleep(wait)
    await websocket.send_text("still here")
    await websocket.close()


async def half(scope, receive, send):
    """Starts a response with a declared length, then never sends its body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await asyncio.Event().wait()


app.mount("/half", half)
