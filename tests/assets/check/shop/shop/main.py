from fastapi import APIRouter, FastAPI

from fastlaunch.probes import Probes
from shop.db import engine

router = APIRouter(prefix="/items")


@router.get("/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id, "pool": engine.pool.size()}


app = FastAPI()
app.include_router(router, prefix="/api")
Probes().install(app)
