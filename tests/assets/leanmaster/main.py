"""A raw ASGI app that imports nothing itself: what it finds in sys.modules at import time (in a worker,
forked from the master) is what the Gunicorn master had loaded."""

import json
import os
import sys

WATCHED = ("sqlalchemy", "alembic", "asyncpg", "fastlaunch.prestart.database")
INHERITED = {name: name in sys.modules for name in WATCHED}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"inherited": INHERITED, "master": os.getppid()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
