"""The overload scenario's CPU-bound endpoint: a few milliseconds of pure-Python work per request, holding the
worker's event loop (as template rendering or JSON of a large payload does)."""

from fastapi import FastAPI

app = FastAPI()

ROUNDS = 30_000  # about 3 ms of CPU on this machine's cores


@app.get("/cpu")
async def cpu() -> dict[str, int]:
    total = 0
    for i in range(ROUNDS):
        total = (total + i * i) % 1_000_003
    return {"total": total}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
