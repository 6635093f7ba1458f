from fastapi import FastAPI

custom_var = FastAPI()


@custom_var.get("/")
def root() -> dict[str, str]:
    return {"app": "custom"}
