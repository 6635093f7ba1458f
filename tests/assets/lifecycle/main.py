import asyncio
import gc
import os
import sys

from fastapi import FastAPI, Request, WebSocket

app = FastAPI()


@app.get("/")
async def root():
    return {"pid": os.getpid()}


@app.get("/slow")
async def slow(s: float = 2.0, mark: str = ""):
    if mark:  # tells the test this request has reached the app
        open(os.path.join(os.environ["INFLIGHT_DIR"], mark), "w").close()
    await asyncio.sleep(s)
    return {"slept": s, "pid": os.getpid()}


@app.get("/scope")
async def scope(request: Request):
    return {
        "root_path": request.scope.get("root_path"),
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
    }


@app.websocket("/ws-scope")
async def ws_scope(websocket: WebSocket):
    await websocket.accept()
    client = websocket.client.host if websocket.client else None
    await websocket.send_json({"client": client, "scheme": websocket.url.scheme})
    await websocket.close()


@app.get("/modules")
async def modules():
    return {name: name in sys.modules for name in ("rich", "typer", "click", "fastlaunch.cli.commands")}


COLLECTING_AT_IMPORT = gc.isenabled()

if os.environ.get("APP_GC_THRESHOLD"):  # an app that tunes its own collector

    gc.set_threshold(int(os.environ["APP_GC_THRESHOLD"]))


@app.get("/gc")
async def gc_state():
    import gc

    return {
        "frozen": gc.get_freeze_count(),
        "tracked": len(gc.get_objects()),
        "threshold": gc.get_threshold(),
        "enabled": gc.isenabled(),
        "enabled_at_import": COLLECTING_AT_IMPORT,
    }
