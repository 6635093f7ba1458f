"""The app of the admission-control tests: every request it starts is written down, so a test can check that
no shed request ever reached it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse

from fastlaunch.probes import Probes

MARKS = Path(os.environ.get("MARKS_DIR", "."))

app = FastAPI()
Probes().install(app)


def _started(request: Request) -> None:
    with (MARKS / "started").open("a") as out:
        out.write(request.headers.get("x-request-id", "-") + "\n")


@app.get("/")
async def root(request: Request) -> PlainTextResponse:
    _started(request)
    return PlainTextResponse("ok")


@app.get("/status")
async def status(request: Request) -> PlainTextResponse:
    """The app's own health check (HEALTHCHECK_PATH in the tests)."""
    _started(request)
    return PlainTextResponse("up")


@app.get("/hold")
async def hold(request: Request) -> PlainTextResponse:
    """Stays in flight until the test creates marks/release (at most 30 s)."""
    _started(request)
    for _ in range(1500):
        if (MARKS / "release").exists():
            break
        await asyncio.sleep(0.02)
    return PlainTextResponse("held")


@app.get("/block")
async def block(request: Request) -> PlainTextResponse:
    """Holds the event loop: the requests behind it queue in the worker."""
    _started(request)
    time.sleep(float(request.query_params.get("seconds", "0.3")))
    return PlainTextResponse("blocked")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()
