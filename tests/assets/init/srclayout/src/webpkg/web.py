from fastapi import FastAPI

from webpkg.routes import greeting

application = FastAPI()


@application.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@application.get("/")
def index() -> dict[str, str]:
    return {"message": greeting()}
