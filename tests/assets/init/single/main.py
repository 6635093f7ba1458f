from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/")
def root():
    return {"hello": "single"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/whoami")
def whoami(request: Request):
    # What the app sees of the client, after the proxy headers were (or were not) trusted.
    return {"client": request.client.host if request.client else None, "scheme": request.url.scheme}
