"""Helpers for tests of the example posts service (example/), served for real through ``fastlaunch run``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from support import free_port
from support import serve as serve_app

EXAMPLE = Path(__file__).resolve().parents[1] / "example"


@contextmanager
def serve(database_url: str, log: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``fastlaunch run`` in example/ (prestart included) with one worker; yields the base URL."""
    port = free_port()
    environment = {"DATABASE_URL": database_url, "WEB_CONCURRENCY": "1", **(env or {})}
    with serve_app(EXAMPLE, port, env=environment, log=log, ready_path="/healthz", timeout=120):
        yield f"http://127.0.0.1:{port}"


def alembic(args: list[str], database_url: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
