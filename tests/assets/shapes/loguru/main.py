"""The common "route uvicorn's loggers into my own logging" recipe (loguru's InterceptHandler, here with the
standard library so the fixture needs nothing else): the app attaches its own handler to uvicorn.access."""

import logging
import sys

from fastapi import FastAPI


class InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(f"APP-HANDLER {record.name}: {record.getMessage()}\n")
        sys.stdout.flush()


for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
    logger = logging.getLogger(name)
    logger.handlers = [InterceptHandler()]
    logger.propagate = False

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"pong": True}
