"""PRELOAD=on on a real `fastlaunch run`: the master imports the app once and the workers share its pages,
measured from /proc/PID/smaps_rollup; a replaced worker is a fork, not a new import; what a fork breaks is
reported. PRELOAD=off (the default) is the contrast: each worker imports the app and holds its own copy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, running, wait_for_workers

from fastlaunch.core.memory import smaps_rollup

MiB = 2**20
MODEL_MB = 64


def uss(pid: int) -> int:
    totals = smaps_rollup(pid)
    return totals["Private_Clean"] + totals["Private_Dirty"]


def importers(project: Path) -> list[int]:
    return [int(pid) for pid in (project / "imported-by").read_text().split()]


def wait_for_log(log: Path, text: str, count: int = 1) -> str:
    deadline = time.monotonic() + 60
    while (content := log.read_text(errors="replace")).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} never appeared {count} times:\n{content}"
        time.sleep(0.1)
    return content


@pytest.mark.parametrize("preload", ["on", "off"])
def test_preload_imports_once_and_workers_share_the_model(tmp_path: Path, preload: str) -> None:
    shutil.copy(ASSETS / "memory/model/main.py", tmp_path / "main.py")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "3", "PRELOAD": preload}
    env["MODEL_MB"] = str(MODEL_MB)
    model = MODEL_MB * MiB
    with running([FASTLAUNCH, "run"], cwd=tmp_path, env=env, log=log, ready_url=f"{base}/1") as proc:
        workers = wait_for_workers(proc.pid, 3)
        wait_for_log(log, "Application startup complete", 3)
        with httpx.Client() as http:  # every worker reads the model and the table
            for n in range(300):
                assert http.get(f"{base}/{n * 4099}", headers={"Connection": "close"}).status_code == 200
        private = {pid: uss(pid) for pid in workers}
        shared = {pid: smaps_rollup(pid) for pid in workers}
        if preload == "on":
            assert importers(tmp_path) == [proc.pid]  # the master, once
            for pid in workers:
                # The model is in each worker's RSS but not its own: what is private is the worker's machinery
                # (a few MiB, the same for any app) and the few pages the requests touched.
                assert shared[pid]["Rss"] > model and private[pid] < model // 4, (pid, shared[pid])
                assert shared[pid]["Pss"] < shared[pid]["Rss"] // 2
            content = log.read_text()
            assert "PRELOAD=on: the master imported the app" in content and "first worker USS" in content

            # A replacement is a fork of the master: no new import.
            os.kill(workers[0], signal.SIGKILL)
            replacement = set(wait_for_workers(proc.pid, 3, exclude=[workers[0]])) - set(workers)
            assert replacement and importers(tmp_path) == [proc.pid]
            # SIGHUP replaces the workers but keeps the code the master imported, and says so.
            proc.send_signal(signal.SIGHUP)
            wait_for_log(log, "PRELOAD=on: SIGHUP")
            assert httpx.get(f"{base}/7", headers={"Connection": "close"}).status_code == 200
            assert importers(tmp_path) == [proc.pid]
        else:
            assert proc.pid not in importers(tmp_path) and set(importers(tmp_path)) == set(workers)
            for pid in workers:
                assert private[pid] > model, (pid, shared[pid])
            assert "PRELOAD" not in log.read_text()


def test_preload_reports_what_a_fork_breaks(tmp_path: Path) -> None:
    shutil.copy(ASSETS / "memory/forkhazards/main.py", tmp_path / "main.py")
    port = free_port()
    log = tmp_path / "server.log"
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "PRELOAD": "on"}
    with running([FASTLAUNCH, "run"], cwd=tmp_path, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/"):
        content = log.read_text()
    assert "thread 'cache-refresher' (Thread) started at import: it will not run in the workers" in content
    # The socket pair stands for a connection; the loop's own wake-up pair is the loop's.
    assert "2 socket(s) opened at import (a database, cache or HTTP connection?)" in content
    assert "1 asyncio event loop(s) created at import" in content
    assert content.count("open it in the app's lifespan (startup) handler instead") == 3
    assert "set PRELOAD=off" in content


def test_preload_of_a_missing_app_fails_once_with_its_code(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("raise RuntimeError('no model file at /models/x.bin')\n")
    result = subprocess.run(
        [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=tmp_path,
        env={**os.environ, "PRELOAD": "on"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "The app raised while loading (main" in result.stderr
    # The app's traceback, from its own frame: none of the launcher's.
    assert 'main.py", line 1, in <module>' in result.stderr and "RuntimeError: no model file" in result.stderr
    assert "fastlaunch/" not in result.stderr and "gunicorn/" not in result.stderr
    assert "Booting worker" not in result.stderr  # nothing forked
