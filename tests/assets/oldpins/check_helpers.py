"""Run inside a venv with FastAPI 0.88 / Starlette 0.22 / pydantic 1.10: probes and offline docs must work."""
import asyncio
import json

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette

from fastlaunch import offline_docs
from fastlaunch.probes import Probes


async def down():
    raise OSError("database down")


async def main():
    results = {}
    for app in (FastAPI(title="old"), Starlette()):
        probes = Probes(timeout=0.5)
        probes.add_check("database", down)
        probes.install(app)
        offline_docs.install(app)
        async with httpx.AsyncClient(app=app, base_url="http://test") as client:
            for path in ("/healthz", "/readyz", "/docs", "/redoc", "/_fastlaunch/docs/redoc.standalone.js"):
                response = await client.get(path)
                results[f"{type(app).__name__} {path}"] = response.status_code
    import fastapi, starlette, pydantic

    results["versions"] = [fastapi.__version__, starlette.__version__, pydantic.VERSION]
    print(json.dumps(results))


asyncio.run(main())
