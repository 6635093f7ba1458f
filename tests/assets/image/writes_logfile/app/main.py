"""A service that logs to a file of its own under /app/logs."""

import logging
import os

from fastapi import FastAPI

os.makedirs("logs", exist_ok=True)
log = logging.getLogger("service")
log.setLevel(logging.INFO)
log.addHandler(logging.FileHandler("logs/app.log"))

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    log.info("index served")
    return {"logged": "logs/app.log"}
