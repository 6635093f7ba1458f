from fastapi import FastAPI

app = FastAPI()

raise RuntimeError("boom at import")
