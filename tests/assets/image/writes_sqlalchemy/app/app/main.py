"""FastAPI's former "SQL (Relational) Databases" tutorial (SQLAlchemy): sql_app.db in the working directory,
its tables created when the module is imported."""

from collections.abc import Iterator

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from . import models
from .database import SessionLocal, engine

models.Base.metadata.create_all(bind=engine)

app = FastAPI()


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


@app.post("/users/")
def create_user(email: str, db: Session = Depends(get_db)) -> dict[str, object]:
    user = models.User(email=email)
    db.add(user)
    db.commit()
    db.refresh(user)
    return {"id": user.id, "email": user.email}


@app.get("/users/")
def read_users(db: Session = Depends(get_db)) -> list[dict[str, object]]:
    return [{"id": u.id, "email": u.email} for u in db.query(models.User).order_by(models.User.id)]
