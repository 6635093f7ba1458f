import os

from sqlalchemy import create_engine

# The usual tutorial default: a file next to where the server starts.
DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///./notes.db")
engine = create_engine(DATABASE_URL)
