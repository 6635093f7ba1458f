"""Notes in PostgreSQL through SQLAlchemy's asyncio engine (asyncpg): the URL is NOTES_DB_URI."""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from notesvc.config import API_KEY, settings

engine = create_async_engine(settings.db_uri)


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)"))
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.post("/notes")
async def add(body: str, x_api_key: str = Header("")):
    if x_api_key != API_KEY:
        raise HTTPException(403)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
    return {"body": body}


@app.get("/notes")
async def notes():
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT body FROM notes ORDER BY id LIMIT :n"), {"n": settings.page_size})).all()
    return {"notes": [r[0] for r in rows], "driver": engine.dialect.driver}
