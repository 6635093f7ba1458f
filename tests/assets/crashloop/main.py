"""An app whose workers die half a second after their startup: Gunicorn would replace them in a loop."""

import asyncio
import contextlib
import os

from fastapi import FastAPI


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    asyncio.get_running_loop().call_later(0.5, os._exit, 1)  # a crash soon after every start
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root() -> dict[str, bool]:
    return {"ok": True}
