# FastAPI's docs app (fastapi.tiangolo.com, "Example"), verbatim, plus the routes the bench adds:
# /async (the same work in an `async def`), /pid (which worker answered) and /sleep (an in-flight
# request for the drain test). Kept verbatim on purpose: excluded from ruff and mypy.
import asyncio
import os
from typing import Union

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root():
    return {"Hello": "World"}


@app.get("/items/{item_id}")
def read_item(item_id: int, q: Union[str, None] = None):
    return {"item_id": item_id, "q": q}


@app.get("/async")
async def read_root_async():
    return {"Hello": "World"}


@app.get("/pid")
async def read_pid():
    return {"pid": os.getpid()}


@app.get("/sleep")
async def read_sleep(s: float = 0.2):
    await asyncio.sleep(min(s, 5.0))
    return {"slept": s}
