"""Routes behind Starlette's Mount (a versioned API, a parameterised tenant prefix) and Host."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Host, Mount, Route


async def item(request):
    return JSONResponse({"item": request.path_params["item_id"]})


async def status(request):
    return JSONResponse({"ok": True})


async def admin(request):
    return JSONResponse({"admin": True})


app = Starlette(
    routes=[
        Host("admin.example.com", app=Starlette(routes=[Route("/panel", admin)])),
        Mount("/api/v1", routes=[Route("/items/{item_id}", item)]),
        Mount("/tenants/{tenant}", routes=[Mount("/v2", routes=[Route("/items/{item_id}", item)])]),
        Route("/status", status),
    ]
)
