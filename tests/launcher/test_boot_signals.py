"""A stop sent while a worker is between its fork and its own signal handlers is not lost.

Until the worker installs its handlers it runs the master's, which only queue the signal for the master's loop:
in the child nobody reads that queue. The master's SIGTERM then went unheard, the worker booted and served, and
the master waited out its graceful timeout before killing it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from support import FASTLAUNCH, free_port, stop, wait_until

APP = """\
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
"""

# The user's post_fork hook runs after fastlaunch's first step: it holds the worker in the window until the
# master's stop has reached it (fastlaunch remembers it) or, where nothing remembers it, for 3 s.
CONF = """\
import time
from pathlib import Path

try:
    from fastlaunch.worker.signals import stopped_while_booting
except ImportError:
    def stopped_while_booting():
        return False


def post_fork(server, worker):
    Path("forked").write_text("")
    deadline = time.monotonic() + 3
    while not stopped_while_booting() and time.monotonic() < deadline:
        time.sleep(0.01)


def worker_exit(server, worker):
    Path("worker_exited").write_text("")
"""


def test_a_stop_sent_while_a_worker_boots_stops_it(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(APP)
    (tmp_path / "gunicorn_conf.py").write_text(CONF)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_CONF": str(tmp_path / "gunicorn_conf.py"),
        "GRACEFUL_TIMEOUT": "3",
    }
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([FASTLAUNCH, "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (tmp_path / "forked").exists() or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        code = stop(proc)
    log_text = (tmp_path / "server.log").read_text()
    assert code == 0, log_text
    # The worker left through Gunicorn's exit path (its worker_exit hook ran), not by the master's SIGKILL.
    assert (tmp_path / "worker_exited").exists(), log_text
    assert "SIGKILL" not in log_text, log_text
