"""A bare ASGI app for tests/test_serving_config.py: it reports what the worker serves it with.

Bare ASGI (no FastAPI) so a worker boots in a moment: the MAX_REQUESTS test restarts many of them.
"""

import asyncio
import json
import os

served = 0  # requests this worker process has answered, this one included


def _protocol(receive):
    """The HTTP protocol serving this request: Uvicorn hands the app its request cycle's bound ``receive``,
    and the cycle calls back the protocol's bound ``on_response``."""
    cycle = getattr(receive, "__self__", None)
    protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
    if protocol is None:
        return None
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(protocol).__mro__]


async def app(scope, receive, send):
    global served
    if scope["type"] != "http":
        return  # lifespan: an app may return at once, and Uvicorn then starts and stops without it
    served += 1
    body = {"pid": os.getpid(), "served": served}
    if scope["path"] == "/runtime":
        loop = type(asyncio.get_running_loop())
        body["loop"] = f"{loop.__module__}.{loop.__qualname__}"
        body["protocol"] = _protocol(receive)
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
