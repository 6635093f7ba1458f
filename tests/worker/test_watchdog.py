"""The event-loop watchdog against a real `fastlaunch run`: the blocking line, the request, the stall's
length, the histogram, and the stack at Gunicorn's TIMEOUT."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from hung import hung_app, serve
from support import free_port, wait_for_log


def test_a_blocked_loop_is_reported_with_the_blocking_line_and_the_request(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, LOOP_BLOCK_WARN="0.5", WEB_CONCURRENCY="1", METRICS="on"):
        response = httpx.get(
            f"http://127.0.0.1:{port}/block?seconds=2", headers={"x-request-id": "blocker-7"}, timeout=30
        )
        assert response.text == "done"
        log = wait_for_log(app_dir / "server.log", "was blocked for")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    report = log[log.index("blocked for") :]
    assert "in GET /block route=/block request_id=blocker-7" in report
    # The app's own frame comes first, naming the line that blocks.
    app_part = report[report.index("The app's code, innermost first:") :]
    first = app_part.splitlines()[1:3]
    assert first[0].strip().startswith(f'File "{app_dir / "main.py"}", line') and first[0].endswith("in block")
    assert first[1].strip() == "time.sleep(seconds)  # the mistake the watchdog names: blocking I/O in an async handler"
    assert "Stack from the event loop (most recent call last):" in report
    app_section = app_part.split("Stack from the event loop")[0]
    assert [line for line in app_section.splitlines() if line.strip().startswith("File ")] == [first[0]]
    ended = re.search(r"was blocked for (\d+\.\d+)s \(GET /block route=/block request_id=blocker-7\)", log)
    assert ended and float(ended.group(1)) >= 0.5
    assert log.count("blocked for") == 2  # once while it lasts, once when it ends: not every check
    assert re.search(r"^fastlaunch_event_loop_stall_seconds_count 1\.0$", metrics, re.M), metrics


def test_a_loop_that_keeps_running_is_not_reported(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, LOOP_BLOCK_WARN="0.5", WEB_CONCURRENCY="1"):
        assert httpx.get(f"http://127.0.0.1:{port}/stream?chunks=4&every=0.5", timeout=30).status_code == 200
        log = wait_for_log(app_dir / "server.log", '"GET /stream?chunks=4&every=0.5 HTTP/1.1" 200')
    assert "blocked" not in log


def test_gunicorn_timeout_logs_the_stack_the_worker_was_stuck_in(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    # The watchdog off, so the only report is the one at SIGABRT.
    with serve(app_dir, port, TIMEOUT="2", LOOP_BLOCK_WARN="0", WEB_CONCURRENCY="1"):
        try:
            httpx.get(f"http://127.0.0.1:{port}/block?seconds=60", headers={"x-request-id": "stuck-1"}, timeout=60)
        except httpx.HTTPError:
            pass  # the worker dies under it: the client sees the connection close
        log = wait_for_log(app_dir / "server.log", "Booting worker", timeout=60)
        log = wait_for_log(app_dir / "server.log", "was sent SIGABRT", timeout=30)
    report = log[log.index("stopped by Gunicorn's TIMEOUT (SIGABRT)") :]
    assert "in GET /block route=/block request_id=stuck-1" in report
    assert "time.sleep(seconds)" in report.split("Stack from the event loop")[0]
    assert "WORKER TIMEOUT" in log
