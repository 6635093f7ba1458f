"""A src-layout package whose application lives in the package itself."""

from fastapi import FastAPI

from bookshelf.shelves import router

app = FastAPI(title="bookshelf")
app.include_router(router)
