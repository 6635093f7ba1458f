import os

from sqlalchemy.ext.asyncio import create_async_engine

from shop.config import settings

engine = create_async_engine(
    settings.url,
    pool_size=settings.pool_size,
    max_overflow=int(os.environ.get("DB_MAX_OVERFLOW", "10")),
    pool_pre_ping=True,
)
