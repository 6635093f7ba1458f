"""A compose fixture: notes in PostgreSQL; prestart.sh migrates (and counts how often it ran)."""

import os

import psycopg
from fastapi import FastAPI, Request

app = FastAPI()


def connect() -> psycopg.Connection:
    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/notes")
def add(text: str):
    with connect() as conn:
        row = conn.execute("INSERT INTO notes (text) VALUES (%s) RETURNING id", (text,)).fetchone()
    return {"id": row[0], "text": text}


@app.get("/notes")
def notes():
    with connect() as conn:
        rows = conn.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
        migrations = conn.execute("SELECT count(*) FROM migrations").fetchone()[0]
    return {"notes": [{"id": i, "text": t} for i, t in rows], "migrations": migrations}


@app.get("/whoami")
def whoami(request: Request):
    return {"client": request.client.host if request.client else None, "scheme": request.url.scheme}
