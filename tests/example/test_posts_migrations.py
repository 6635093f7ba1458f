from __future__ import annotations

import sqlite3
from pathlib import Path

from pg import PostgresCluster
from posts import alembic


def tables_sqlite(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "posts.db"
    url = f"sqlite+aiosqlite:///{path}"
    up = alembic(["upgrade", "head"], url)
    assert up.returncode == 0, up.stderr
    assert tables_sqlite(path) == {"alembic_version", "posts", "comments"}
    down = alembic(["downgrade", "base"], url)
    assert down.returncode == 0, down.stderr
    assert tables_sqlite(path) == {"alembic_version"}
    assert "Running downgrade 0001 -> , posts and comments" in down.stderr


def test_upgrade_and_downgrade_on_postgresql(postgres: PostgresCluster, pg_database: str) -> None:
    name = pg_database.rsplit("/", 1)[1]

    def tables() -> set[str]:
        rows = postgres.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", name)
        return {r["tablename"] for r in rows}

    up = alembic(["upgrade", "head"], pg_database)
    assert up.returncode == 0, up.stderr
    assert tables() == {"alembic_version", "posts", "comments"}
    columns = postgres.execute(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = 'posts' AND column_name = 'publication_date'",
        name,
    )
    assert columns[0]["data_type"] == "timestamp with time zone"
    delete_rule = postgres.execute("SELECT delete_rule FROM information_schema.referential_constraints", name)
    assert [r["delete_rule"] for r in delete_rule] == ["CASCADE"]
    down = alembic(["downgrade", "base"], pg_database)
    assert down.returncode == 0, down.stderr
    assert tables() == {"alembic_version"}
