import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root() -> dict[str, object]:
    ids = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "home": os.environ["HOME"]}
    return {"app": "simple", "greeting": os.environ.get("GREETING"), **ids}
