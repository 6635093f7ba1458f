"""No database: a model file path and an API key from the environment, the key required."""

import os

from fastapi import FastAPI

API_KEY = os.environ["API_KEY"]
MODEL = os.getenv("MODEL_PATH", "model.bin")
app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok", "model": MODEL}
