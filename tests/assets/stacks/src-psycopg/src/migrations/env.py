from alembic import context
from sqlalchemy import create_engine

from src.core.config import settings

with create_engine(settings.SQLALCHEMY_DATABASE_URI).connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
