"""Database-aware prestart, end to end: ``fastlaunch run`` in example/ against a PostgreSQL cluster that is
not running yet, or never runs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from pg import PASSWORD, PostgresCluster
from posts import EXAMPLE
from support import FASTLAUNCH, free_port, run_cli, running, wait_for_http


def test_the_service_starts_once_the_database_appears(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {"DATABASE_URL": pg_cluster.url(), "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"}
    with running([FASTLAUNCH, "run"], cwd=EXAMPLE, env=env, log=log) as proc:
        deadline = time.monotonic() + 30
        while log.read_text().count("Waiting for database") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        pg_cluster.start()
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=120, proc=proc)
        created = httpx.post(f"http://127.0.0.1:{port}/posts", json={"title": "t", "content": "c"}, timeout=10)
        assert created.status_code == 201  # migrated by prestart, right after the wait
    output = log.read_text()
    assert f"postgresql+asyncpg://postgres:***@127.0.0.1:{pg_cluster.port}/postgres is ready (attempt" in output
    assert output.index("is ready") < output.index("Running upgrade") < output.index("Booting worker")
    assert PASSWORD not in output


def test_a_database_that_never_appears_stops_the_start(tmp_path: Path) -> None:
    db_port, port = free_port(), free_port()
    url = f"postgresql+asyncpg://posts:{PASSWORD}@127.0.0.1:{db_port}/posts"
    env = {"DATABASE_URL": url, "DB_WAIT_TIMEOUT": "2", "HOST": "127.0.0.1", "PORT": str(port)}
    result = run_cli(["run"], cwd=EXAMPLE, env=env)
    assert result.returncode == 6, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert re.fullmatch(
        re.escape(f"Error: Database postgresql+asyncpg://posts:***@127.0.0.1:{db_port}/posts not reachable within ")
        + r"DB_WAIT_TIMEOUT=2s \([2-9] attempts; last: ConnectionRefusedError: .*\); the server was not started\.",
        errors[0],
    ), errors[0]
    assert "Traceback" not in result.stderr and PASSWORD not in result.stdout + result.stderr
    assert "Listening at" not in result.stderr and "Booting worker" not in result.stderr
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        raise AssertionError("something is serving on the port")
    except httpx.ConnectError:
        pass
