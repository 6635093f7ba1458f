from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root():
    return {"hello": "uv"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
