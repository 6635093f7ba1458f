"""The shape of FastAPI's SQL tutorials with the standard library's sqlite3: the database file is created in the
working directory (/app) when the module is imported."""

import sqlite3

from fastapi import FastAPI

connection = sqlite3.connect("database.db", check_same_thread=False)
connection.execute("CREATE TABLE IF NOT EXISTS hero (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
connection.commit()

app = FastAPI()


@app.post("/heroes/")
def create_hero(name: str) -> dict[str, object]:
    cursor = connection.execute("INSERT INTO hero (name) VALUES (?)", (name,))
    connection.commit()
    return {"id": cursor.lastrowid, "name": name}


@app.get("/heroes/")
def read_heroes() -> list[dict[str, object]]:
    return [{"id": i, "name": n} for i, n in connection.execute("SELECT id, name FROM hero ORDER BY id")]
