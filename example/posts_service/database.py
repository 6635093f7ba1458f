"""The async engine and sessions (SQLAlchemy 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from posts_service.config import Settings


def create_engine(settings: Settings, *, read_only: bool = False) -> AsyncEngine:
    """The engine for writes, or with ``read_only`` the one the GET endpoints use.

    Reads run without a transaction (autocommit): under PostgreSQL's READ COMMITTED every statement takes
    its own snapshot anyway, and a transaction would add BEGIN and ROLLBACK round trips to each request.
    Autocommit is set when a connection is made, not per checkout, because outside autocommit the pool's
    pre-ping wraps its ping in BEGIN/ROLLBACK too; so a pooled read is one ping and its SELECT.
    """
    url = make_url(settings.database_url_value)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if read_only:
        options["isolation_level"] = "AUTOCOMMIT"
    if url.get_backend_name() != "sqlite":
        options["pool_size"] = settings.database_pool_size
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        # SQLite leaves foreign keys (and so ON DELETE CASCADE) off unless each connection asks.
        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys_on(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.read_sessions
    async with sessions() as session:
        yield session
