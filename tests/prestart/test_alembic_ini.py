"""alembic.ini below the directory the project is run in (src/alembic.ini) is found and used from there; the
migration lock is not left in the project."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support import run_cli

from fastlaunch.core.alembic_ini import find_alembic_ini

ENV_PY = """\
from alembic import context
from sqlalchemy import create_engine

with create_engine(context.config.get_main_option("sqlalchemy.url")).connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
"""
REVISION = """\
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.execute("CREATE TABLE items (id integer PRIMARY KEY)")
"""


def project_with_nested_ini(root: Path) -> Path:
    migrations = root / "src" / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (root / "src" / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = sqlite:///./app.db\n"
    )
    (migrations / "env.py").write_text(ENV_PY)
    (migrations / "versions" / "0001_items.py").write_text(REVISION)
    return root


def test_nested_ini_is_found_and_migrates_from_the_project_directory(tmp_path: Path) -> None:
    project = project_with_nested_ini(tmp_path / "proj")
    result = run_cli(["prestart"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Using src/alembic.ini, run from" in result.stderr
    with sqlite3.connect(project / "app.db") as db:  # relative to the directory the project is run in
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
    assert not (project / ".fastlaunch-migrate.lock").exists()


def test_search_is_shallow_first_and_skips_tests_and_hidden_directories(tmp_path: Path) -> None:
    for relative in (
        "tests/alembic.ini",
        ".venv/alembic.ini",
        "a/b/c/d/alembic.ini",
        "z/alembic.ini",
        "b/x/alembic.ini",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("[alembic]\n")
    assert find_alembic_ini(tmp_path) == tmp_path / "z/alembic.ini"
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    assert find_alembic_ini(tmp_path) == tmp_path / "alembic.ini"
    assert find_alembic_ini(tmp_path / "a") is None  # three levels down is too deep
