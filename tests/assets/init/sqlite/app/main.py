"""An example-like service: a small SQLite-backed API with probe routes."""

import os
import sqlite3

from fastapi import FastAPI

DB = os.environ.get("NOTES_DB", "/tmp/notes.db")
app = FastAPI()


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB)
    conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    return conn


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/readyz")
def readyz():
    with connect() as conn:
        conn.execute("SELECT 1")
    return {"status": "ready"}


@app.post("/notes")
def add(text: str):
    with connect() as conn:
        cur = conn.execute("INSERT INTO notes (text) VALUES (?)", (text,))
    return {"id": cur.lastrowid, "text": text}


@app.get("/notes")
def notes():
    with connect() as conn:
        return [{"id": i, "text": t} for i, t in conn.execute("SELECT id, text FROM notes ORDER BY id")]
