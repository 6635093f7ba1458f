"""Items in PostgreSQL (SQLAlchemy + psycopg 3), the URL assembled from POSTGRES_* parts; Alembic migrates."""

from fastapi import FastAPI
from sqlalchemy import create_engine, text

from src.core.config import settings

engine = create_engine(settings.SQLALCHEMY_DATABASE_URI)
app = FastAPI()


@app.get("/items")
def items():
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name FROM items ORDER BY id")).all()
    return {"items": [r[0] for r in rows], "driver": engine.dialect.driver}
