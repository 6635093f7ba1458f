import asyncio
import os
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

app = FastAPI()
BIG = bytes(range(256)) * 4096  # 1 MiB, every byte value, so a reordered or dropped piece shows


@app.get("/")
async def root():
    return {"ok": True}


@app.api_route("/head", methods=["GET", "HEAD"])
async def head():
    return Response(b"twelve bytes", media_type="text/plain")


@app.get("/big")
async def big():
    return Response(BIG, media_type="application/octet-stream")


@app.get("/empty", status_code=204)
async def empty():
    return Response(status_code=204)


@app.get("/stream")
async def stream():
    async def chunks():
        go = Path(os.environ["MARKER_DIR"]) / "go"
        while not go.exists():  # the test creates it once it has the response's headers
            await asyncio.sleep(0.02)
        yield b"first chunk;"
        yield b"second chunk"

    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


async def fail_after_head(scope, receive, send):
    """A raw ASGI app that starts a response and then raises before its body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
    raise RuntimeError("failed after the head")


app.mount("/fail-after-head", fail_after_head)


@app.get("/own-id")
async def own_id():
    return Response(b"mine", media_type="text/plain", headers={"X-Request-ID": "chosen-by-the-app"})
