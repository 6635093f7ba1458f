from fastapi import FastAPI

from app.version import VERSION

app = FastAPI()


@app.get("/")
def root() -> dict[str, str]:
    return {"app": "package", "version": VERSION}
