"""No database: a model file path and an API key from the environment, the key required; a log file under the
code's own directory (logs/, which the image must make writable for its non-root user)."""

import logging
import os
from pathlib import Path

from fastapi import FastAPI

API_KEY = os.environ["API_KEY"]
MODEL = os.getenv("MODEL_PATH", "model.bin")
LOGS = Path(__file__).resolve().parent / "logs"
LOGS.mkdir(exist_ok=True)
log = logging.getLogger("nodb")
log.addHandler(logging.FileHandler(LOGS / "app.log"))
app = FastAPI()


@app.get("/healthz")
def healthz():
    log.warning("healthz")
    return {"status": "ok", "model": MODEL}
