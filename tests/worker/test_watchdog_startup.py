"""The event-loop watchdog while the app starts, against a real `fastlaunch run`: a lifespan startup that blocks
the loop (a model loading) gives one brief line, not stack reports, and the stacks it prints later carry no
frames of the import system."""

from __future__ import annotations

from pathlib import Path

import httpx
from hung import hung_app, serve
from support import free_port, wait_for_log

BLOCKING_IMPORT = "import time\n\ntime.sleep(2)  # loading a model, the blocking way\n"


def test_a_blocking_startup_gives_one_brief_line(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    (app_dir / "model.py").write_text(BLOCKING_IMPORT)
    port = free_port()
    with serve(app_dir, port, LOOP_BLOCK_WARN="0.5", WEB_CONCURRENCY="1", STARTUP_IMPORT="model"):
        log = wait_for_log(app_dir / "server.log", "while the app started")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "ok"
    assert "blocked for" not in log.replace("was blocked for up to", "")  # no stall report, no stack
    assert "<frozen" not in log
    assert log.count("while the app started") == 1


def test_a_stall_report_leaves_out_the_import_systems_frames(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    (app_dir / "model.py").write_text(BLOCKING_IMPORT)
    port = free_port()
    with serve(app_dir, port, LOOP_BLOCK_WARN="0.5", WEB_CONCURRENCY="1"):
        assert httpx.get(f"http://127.0.0.1:{port}/import?name=model", timeout=30).text == "imported"
        log = wait_for_log(app_dir / "server.log", "was blocked for")
    report = log[log.index("blocked for") :]
    assert "model.py" in report and "time.sleep(2)" in report  # the blocking line, found through the import
    assert "<frozen" not in report
