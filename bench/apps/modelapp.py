# A "model" app: MODEL_MB MiB (default 300) of bytes allocated at import, every page written, as loaded model
# weights are, plus a lookup table of small objects (the kind of heap refcounts and the collector write to).
# /predict/{n} reads one byte of the model and one table entry; /pid says which worker answered.
import os

from fastapi import FastAPI

MODEL = b"\x07" * (int(os.environ.get("MODEL_MB", "300")) * 2**20)
TABLE = {n: f"label-{n}" for n in range(200_000)}

app = FastAPI()


@app.get("/")
def read_root():
    return {"model_bytes": len(MODEL)}


@app.get("/predict/{n}")
def predict(n: int):
    return {"byte": MODEL[(n * 4099) % len(MODEL)], "label": TABLE.get(n % len(TABLE))}


@app.get("/pid")
async def read_pid():
    return {"pid": os.getpid()}
