"""FastAPI's "SQL (Relational) Databases" tutorial (SQLModel): database.db in the working directory, its tables
created when the app starts (a startup handler, so the failure, if any, comes from the lifespan)."""

from sqlmodel import Field, Session, SQLModel, create_engine, select

from fastapi import FastAPI


class Hero(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)


sqlite_file_name = "database.db"
sqlite_url = f"sqlite:///{sqlite_file_name}"
engine = create_engine(sqlite_url, connect_args={"check_same_thread": False})

app = FastAPI()


@app.on_event("startup")
def on_startup() -> None:
    SQLModel.metadata.create_all(engine)


@app.post("/heroes/")
def create_hero(name: str) -> Hero:
    with Session(engine) as session:
        hero = Hero(name=name)
        session.add(hero)
        session.commit()
        session.refresh(hero)
        return hero


@app.get("/heroes/")
def read_heroes() -> list[Hero]:
    with Session(engine) as session:
        return list(session.exec(select(Hero)))
