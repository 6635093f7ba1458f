"""A small service that keeps uploaded files under /app/static/uploads and serves them back from /static."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

UPLOADS = Path("static/uploads")
UPLOADS.mkdir(parents=True, exist_ok=True)

app = FastAPI()


@app.put("/upload/{name}")
async def upload(name: str, request: Request) -> dict[str, object]:
    data = await request.body()
    (UPLOADS / Path(name).name).write_bytes(data)
    return {"stored": f"/static/uploads/{Path(name).name}", "bytes": len(data)}


app.mount("/static", StaticFiles(directory="static"), name="static")
