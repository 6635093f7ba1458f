"""The app the image serves until yours is copied over /app: plain ASGI, no framework."""

import sys

version = f"{sys.version_info.major}.{sys.version_info.minor}"
body = f"Hello world! From fastlaunch (Gunicorn + Uvicorn). Using Python {version}".encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
