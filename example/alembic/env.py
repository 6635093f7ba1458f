"""Alembic environment: the URL comes from the app's settings, and migrations run on the async driver."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from posts_service.config import SettingsError, get_settings
from posts_service.models import Base
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
try:
    URL = get_settings().database_url_value
except SettingsError as exc:
    raise SystemExit(f"posts_service: {exc}") from None  # the one message that lists every variable


def run_migrations_offline() -> None:
    context.configure(url=URL, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # Batch mode lets later ALTERs work on SQLite too (it rebuilds the table).
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(URL)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
