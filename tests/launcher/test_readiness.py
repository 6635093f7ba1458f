"""Honest readiness: the launcher says the service is ready only when every worker serves."""

from __future__ import annotations

import re
from pathlib import Path

from hung import hung_app, serve
from support import free_port, wait_for_log


def test_ready_is_logged_after_every_worker_finished_its_slow_startup(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2", STARTUP_SECONDS="3", STARTUP_TIMEOUT="1"):
        log = wait_for_log(app_dir / "server.log", "workers serving; startup took")
    lines = log.splitlines()
    ready = next(i for i, line in enumerate(lines) if "workers serving; startup took" in line)
    completes = [i for i, line in enumerate(lines) if "Application startup complete." in line]
    assert len(completes) == 2 and max(completes) < ready, log
    took = re.search(r"2 workers serving; startup took (\d+\.\d)s", lines[ready])
    assert took and float(took.group(1)) >= 3.0  # the app's own startup sleeps 3 s: it cannot be less
    exceeded = next(i for i, line in enumerate(lines) if "STARTUP_TIMEOUT=1s" in line)
    assert exceeded < ready
    assert "0 of 2 workers serving" in lines[exceeded]


def test_a_quick_start_says_ready_once_and_never_warns(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2", STARTUP_TIMEOUT="60"):
        log = wait_for_log(app_dir / "server.log", "workers serving; startup took")
    assert log.count("workers serving; startup took") == 1
    assert "STARTUP_TIMEOUT" not in log
