import asyncio
import logging
import os
import time

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from fastlaunch.request_id import get_request_id

app = FastAPI()
log = logging.getLogger("abuseapp")


@app.get("/")
async def root():
    return {"ok": True, "pid": os.getpid()}


@app.api_route("/events", methods=["GET", "HEAD"])
async def events():
    async def endless():
        while True:  # a server-sent event stream that never ends on its own
            yield b"data: tick\n\n"
            await asyncio.sleep(0.5)

    return StreamingResponse(endless(), media_type="text/event-stream")


@app.get("/seen")
async def seen(request: Request):
    """What the app sees of the client and of the request id."""
    return {
        "client": request.client.host if request.client else None,
        "header_ids": request.headers.getlist("x-request-id"),
        "context_id": get_request_id(),
    }


@app.get("/warn")
async def warn():
    log.warning("handled /warn in the app")
    return {"warned": True}


@app.get("/slow")
async def slow(s: float = 2.0, announce: bool = False):
    if announce:  # tells the test this request has reached the app
        log.warning("slow started")
    await asyncio.sleep(s)
    return {"slept": s}


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


@app.get("/sync-sleep")
def sync_sleep(s: float = 20.0):
    time.sleep(s)  # a sync handler (thread pool) stuck in a call that never times out
    return {"slept": s}
