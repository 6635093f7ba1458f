from fastapi import FastAPI

app = FastAPI(title="decoy: [tool.fastapi] entrypoint must win over automatic discovery")
