"""The database prestart steps run in a child process: the Gunicorn master (and so every worker it forks)
never loads SQLAlchemy, Alembic or the driver; the wait, the lock and the migration keep their messages and exit
codes."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from pg import PASSWORD, PostgresCluster
from posts import EXAMPLE
from support import ASSETS, FASTLAUNCH, child_pids, free_port, run_cli, running

from fastlaunch.core.exceptions import ExitCode

APPLIED = "Running upgrade  -> 0001"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The lean app, with the example's migrations beside it."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE / "alembic", project / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "alembic.ini", project)
    shutil.copy(ASSETS / "leanmaster/main.py", project)
    return project


def serve_once(project: Path, url: str, log: Path) -> tuple[dict[str, bool], str, str]:
    """Start ``fastlaunch run`` on PostgreSQL, read what its master holds, stop it: (inherited modules,
    the master's memory map, the log)."""
    port = free_port()
    env = {"DATABASE_URL": url, "PORT": str(port), "WEB_CONCURRENCY": "1", "APP_MODULE": "main:app"}
    ready = f"http://127.0.0.1:{port}/"
    with running([FASTLAUNCH, "run"], cwd=project, env=env, log=log, ready_url=ready, timeout=120) as proc:
        answer = httpx.get(ready, timeout=10).json()
        assert answer["master"] == proc.pid  # fastlaunch execs, never forks, into the master
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    return answer["inherited"], maps, log.read_text()


def test_the_master_never_loads_the_database_stack(postgres: PostgresCluster, pg_database: str, project: Path) -> None:
    for run in ("migrates", "at head"):
        inherited, maps, log = serve_once(project, pg_database, project.parent / f"{run}.log")
        assert not any(inherited.values()), (run, inherited)
        # The driver's and SQLAlchemy's compiled extensions would be mapped into the master's memory.
        assert "asyncpg" not in maps and "sqlalchemy" not in maps, run
        assert "Database" in log and "is ready" in log, log  # the wait still ran (in the child)
        assert PASSWORD not in log
        if run == "migrates":
            assert log.count(APPLIED) == 1, log
            assert "under a PostgreSQL advisory lock" in log
        else:  # decided from alembic_version, without starting Alembic
            assert APPLIED not in log and "alembic not run" in log, log
    name = pg_database.rsplit("/", 1)[1]
    assert [r["version_num"] for r in postgres.execute("SELECT version_num FROM alembic_version", name)] == ["0001"]


def test_a_failed_wait_keeps_its_message_and_exit_code(project: Path) -> None:
    port = free_port()  # nothing listens: refused until the budget is spent
    url = f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:{port}/app"
    env = {"DATABASE_URL": url, "DB_WAIT_TIMEOUT": "1", "PORT": str(free_port()), "APP_MODULE": "main:app"}
    result = run_cli(["run"], cwd=project, env=env)
    assert result.returncode == ExitCode.DATABASE, result.stderr
    assert "not reachable within DB_WAIT_TIMEOUT=1s" in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout


def test_sigterm_while_waiting_stops_the_child_too(project: Path) -> None:
    port = free_port()
    env = {"DATABASE_URL": f"postgresql+asyncpg://app:x@127.0.0.1:{port}/app", "DB_WAIT_TIMEOUT": "120"}
    log = project.parent / "run.log"
    with running([FASTLAUNCH, "run"], cwd=project, env=env | {"APP_MODULE": "main:app"}, log=log) as proc:
        children: list[int] = []
        for _ in range(300):  # the child is waiting once it has said so
            children = child_pids(proc.pid)
            if children and "Waiting for database" in log.read_text():
                break
            time.sleep(0.1)
        assert len(children) == 1, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    assert not Path(f"/proc/{children[0]}").exists()
    text = log.read_text()
    assert "stopped by signal SIGTERM" in text and "Traceback" not in text
