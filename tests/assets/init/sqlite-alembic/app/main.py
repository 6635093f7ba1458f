from fastapi import FastAPI
from sqlalchemy import text

from app.db import engine

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/notes")
def add(body: str) -> dict[str, object]:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
    return {"body": body}


@app.get("/notes")
def notes() -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT body FROM notes ORDER BY id"))]
