"""The app the image serves until yours is copied over /app."""

import sys

from fastapi import FastAPI

app = FastAPI()
version = f"{sys.version_info.major}.{sys.version_info.minor}"


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"message": f"Hello world! From FastAPI served by fastlaunch (Gunicorn + Uvicorn). Using Python {version}"}
