"""A project rooted at its package directory (backend/ holds __init__.py and main.py, run from backend/);
MariaDB through SQLAlchemy and PyMySQL, the URL assembled from DB_* parts."""

from fastapi import FastAPI
from sqlalchemy import text

from db import engine

app = FastAPI()


@app.get("/visits")
def visits():
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS visits (id INT AUTO_INCREMENT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO visits () VALUES ()"))
        count = conn.execute(text("SELECT COUNT(*) FROM visits")).scalar_one()
    return {"visits": count, "driver": engine.dialect.driver}
