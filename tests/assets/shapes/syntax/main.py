from fastapi import FastAPI

app = FastAPI()
def broken(:
    return 1
