"""Builds the database URL from the app's own settings, as the full-stack template builds it from POSTGRES_*."""

import os

from alembic import context
from sqlalchemy import create_engine, pool

url = f"sqlite:///{os.environ.get('SHOP_DB_FILE', 'shop.db')}"
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
