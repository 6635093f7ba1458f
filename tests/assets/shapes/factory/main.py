"""An application factory, as `uvicorn --factory main:create_app` serves it."""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="made by a factory")

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"made_by": "create_app"}

    return app
