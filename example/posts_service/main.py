"""The application: ``posts_service.main:app`` (``fastlaunch run`` finds it through pyproject.toml)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.exceptions import HTTPException

from fastlaunch import offline_docs
from fastlaunch.probes import Probes
from posts_service.config import Settings, SettingsError, get_settings
from posts_service.database import create_engine, ping
from posts_service.routes import router

log = logging.getLogger("posts_service")


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method the OpenAPI schema documents for this path (public API, unlike the router's internals)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)), path):
            methods.update(m.upper() for m in operations)
    return methods | ({"HEAD"} if "GET" in methods else set())


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's 405 names only the first route's methods; RFC 9110 wants every method of the resource."""
    methods = allowed_methods(request.app, request.url.path) if exc.status_code == 405 else set()
    if not methods:
        return await http_exception_handler(request, exc)
    return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(sorted(methods))})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_engine(settings)
    read_engine = create_engine(settings, read_only=True)
    probes = Probes(timeout=2.0)
    probes.add_check("database", lambda: ping(engine))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.debug:
            # The chapter printed its settings here, password included; SecretStr prints as '**********'.
            log.warning("Settings: %r", settings)
        yield
        await engine.dispose()
        await read_engine.dispose()

    # The CDN-backed docs are replaced by offline_docs below.
    app = FastAPI(title="Posts service", version="1.0.0", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.state.read_sessions = async_sessionmaker(read_engine, expire_on_commit=False)
    app.include_router(router)
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    probes.install(app)
    offline_docs.install(app)
    return app


try:
    app = create_app()
except SettingsError as exc:
    # The one message that lists every variable to fix; fastlaunch shows it without a traceback.
    raise SystemExit(f"posts_service: {exc}") from None
