import logging
import os
import time

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("obsapp")


@app.get("/")
def root():
    return {"pid": os.getpid()}


@app.get("/items/{item_id}")
def read_item(item_id: int):
    return {"item_id": item_id}


@app.get("/log")
def log_something():
    log.warning("handled /log in the app")
    return {"logged": True}


@app.get("/boom")
def boom():
    raise RuntimeError("boom from the app")


@app.get("/hold")
async def hold(s: float = 0.2, announce: bool = False):
    if announce:  # tells the test this request has reached the app
        log.warning("hold started")
    # Blocks this worker's event loop on purpose, so concurrent requests are answered by other workers.
    time.sleep(s)
    return {"pid": os.getpid()}
