from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from pg import PASSWORD, PostgresCluster
from posts import EXAMPLE
from support import FASTLAUNCH, run_cli

from fastlaunch.core.settings import load_settings
from fastlaunch.prestart.database import DatabaseURL
from fastlaunch.prestart.migrations import lock_file

APPLIED = "Running upgrade  -> 0001"  # alembic logs this line once per revision it applies


def prestart_all(count: int, env: dict[str, str], logs: Path) -> list[tuple[int, str]]:
    """Start ``count`` ``fastlaunch prestart`` at once in example/; exit code and output of each."""
    procs = []
    for i in range(count):
        out = (logs / f"prestart-{i}.log").open("w")
        procs.append(
            (
                subprocess.Popen(
                    [FASTLAUNCH, "prestart"],
                    cwd=EXAMPLE,
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ),
                out,
            )
        )
    results = []
    for i, (proc, out) in enumerate(procs):
        try:
            code = proc.wait(180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            out.close()
        results.append((code, (logs / f"prestart-{i}.log").read_text()))
    return results


def test_eight_replicas_on_postgresql_migrate_once(postgres: PostgresCluster, pg_database: str, tmp_path: Path) -> None:
    results = prestart_all(8, {"DATABASE_URL": pg_database}, tmp_path)
    outputs = "".join(text for _, text in results)
    assert [code for code, _ in results] == [0] * 8, outputs
    assert outputs.count(APPLIED) == 1, outputs
    assert outputs.count("Migrations are at head") == 8
    assert "Another replica is migrating" in outputs  # they really did start together
    assert PASSWORD not in outputs
    name = pg_database.rsplit("/", 1)[1]
    assert [r["version_num"] for r in postgres.execute("SELECT version_num FROM alembic_version", name)] == ["0001"]


def test_replicas_on_sqlite_migrate_once(tmp_path: Path) -> None:
    database = tmp_path / "posts.db"
    results = prestart_all(4, {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}, tmp_path)
    outputs = "".join(text for _, text in results)
    assert [code for code, _ in results] == [0] * 4, outputs
    assert outputs.count(APPLIED) == 1, outputs
    assert f"file lock {database}.migrate.lock" in outputs
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]


def test_migrate_off_skips_and_on_requires_alembic_ini(tmp_path: Path) -> None:
    database = tmp_path / "posts.db"
    off = run_cli(["prestart"], cwd=EXAMPLE, env={"MIGRATE": "off", "DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    assert off.returncode == 0, off.stderr
    assert not database.exists()
    on = run_cli(["prestart"], cwd=tmp_path, env={"MIGRATE": "on"})
    assert on.returncode == 7
    assert f"MIGRATE=on (environment (MIGRATE)) but {tmp_path / 'alembic.ini'} does not exist." in on.stderr
    assert "Traceback" not in on.stderr


def test_a_failing_migration_stops_prestart(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE / "alembic", project / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "alembic.ini", project)
    (project / "alembic" / "versions" / "0002_broken.py").write_text(
        'revision = "0002"\ndown_revision = "0001"\n\n\ndef upgrade() -> None:\n    raise RuntimeError("boom")\n'
    )
    result = run_cli(["prestart"], cwd=project, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 7
    assert "RuntimeError: boom" in result.stderr  # alembic's own output, streamed
    assert "alembic upgrade head" in result.stderr and "failed with exit code 1" in result.stderr


def test_lock_file_sits_next_to_the_sqlite_database(tmp_path: Path) -> None:
    def where(env: dict[str, str]) -> Path:
        settings = load_settings(environ=env, project_dir=tmp_path)
        url = DatabaseURL.parse(env["DATABASE_URL"]) if "DATABASE_URL" in env else None
        return lock_file(settings, url)

    assert where({"DATABASE_URL": "sqlite:///./data/app.db"}) == tmp_path / "data" / "app.db.migrate.lock"
    assert where({"DATABASE_URL": "sqlite+aiosqlite:////srv/app.db"}) == Path("/srv/app.db.migrate.lock")
    assert where({}).parent == Path(tempfile.gettempdir()) and where({}).name.startswith("fastlaunch-migrate-")
