"""A Litestar application: its router records the matched handler's path template in the scope."""

from litestar import Litestar, Router, get


@get("/orders/{order_id:int}")
async def order(order_id: int) -> dict[str, int]:
    return {"order_id": order_id}


@get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


app = Litestar(route_handlers=[Router(path="/shop", route_handlers=[order]), health])
