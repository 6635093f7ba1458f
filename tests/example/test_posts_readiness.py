from __future__ import annotations

import time
from pathlib import Path

import httpx
from pg import PASSWORD, PostgresCluster
from posts import serve


def status(base: str, path: str) -> int:
    return httpx.get(base + path, timeout=10).status_code


def wait_status(base: str, path: str, expected: int, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(base + path, timeout=10)
        if response.status_code == expected or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_readiness_follows_the_database_while_liveness_stays_up(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    pg_cluster.start()
    log = tmp_path / "server.log"
    with serve(pg_cluster.url(), log, env={"DEBUG": "true"}) as base:
        assert status(base, "/readyz") == 200
        assert status(base, "/healthz") == 200

        pg_cluster.stop()
        down = wait_status(base, "/readyz", 503)
        assert down.status_code == 503
        assert down.json()["failing"] == ["database"]
        assert status(base, "/healthz") == 200

        pg_cluster.start()
        up = wait_status(base, "/readyz", 200)
        assert up.status_code == 200, up.text
        assert up.json() == {"status": "ready", "checks": {"database": "ok"}}
        assert status(base, "/healthz") == 200
    output = log.read_text()
    # DEBUG=true logs the settings, as the chapter did, but the secret is masked.
    assert "database_url=SecretStr('**********')" in output
    assert PASSWORD not in output
