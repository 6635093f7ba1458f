# A project pinned like the deployment chapter's: FastAPI 0.88, pydantic 1.x.
import sqlite3
from typing import List, Optional

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Note(BaseModel):
    id: int
    text: str

    class Config:
        orm_mode = True


@app.get("/items/{item_id}")
def read_item(item_id: int, q: Optional[str] = None):
    return {"item_id": item_id, "q": q}


@app.get("/notes", response_model=List[Note])
def notes():
    with sqlite3.connect("notes.db") as db:
        return [Note(id=row[0], text=row[1]) for row in db.execute("SELECT id, text FROM notes ORDER BY id")]
