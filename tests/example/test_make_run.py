"""``make run``, as the README tells a new user to type it: the example served by ``fastlaunch run`` on
127.0.0.1, SQLite, migrations applied by prestart."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from posts import EXAMPLE
from support import free_port, require_tool, wait_for_http

REPO = EXAMPLE.parent


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM to the process group make leads (fastlaunch stops gracefully), SIGKILL for what outlives it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc.poll()  # reap make itself: a zombie would still count as a member of its group
            os.killpg(proc.pid, 0)  # raises once no process of the group is left
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def test_make_run_serves_the_example_with_migrations_applied(tmp_path: Path) -> None:
    make = require_tool("make", "make run is the README's command")
    port = free_port()
    # A scratch SQLite file instead of example/posts.db, the developer's own.
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/posts.db"}
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        # Its own session: make, the shell and fastlaunch are stopped together, by the group make leads.
        proc = subprocess.Popen(
            [make, "-C", str(REPO), "run", f"PORT={port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=300, proc=proc)
            created = httpx.post(f"http://127.0.0.1:{port}/posts", json={"title": "Hello", "content": "make run"})
            assert created.status_code == 201, created.text
            listed = httpx.get(f"http://127.0.0.1:{port}/posts").json()
            assert [p["title"] for p in listed] == ["Hello"]
        finally:
            stop_group(proc)
    text = log.read_text(errors="replace")
    assert "Running upgrade  -> 0001" in text, text
    assert f"Listening at: http://127.0.0.1:{port}" in text, text
