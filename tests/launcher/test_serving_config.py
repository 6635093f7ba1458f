"""Settings really reach Gunicorn and Uvicorn: real ``fastlaunch run`` processes on 127.0.0.1, each setting
shown by what the server then does (or by what Gunicorn itself reports from a GUNICORN_CONF hook)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from support import ASSETS, child_pids, free_port, run_cli, serve

SERVING = ASSETS / "serving"
HOOKS = SERVING / "hooks.py"  # a GUNICORN_CONF with hooks only (when_ready, post_worker_init)
FASTLAUNCH_PROTOCOL = "fastlaunch.worker.http_protocol.HttpToolsOneWriteProtocol"
UVICORN_HTTPTOOLS = "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(SERVING / "main.py", root / "main.py")
    return root


def get(port: int, path: str = "/") -> dict[str, Any]:
    """One request on a fresh connection; the app answers its PID and how many requests that worker served.
    (http.client: an httpx call builds an SSL context, ~25 ms, and the MAX_REQUESTS test sends hundreds.)"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


@pytest.mark.parametrize(
    ("worker_class", "loaded", "protocol"),
    [
        # the default, named explicitly
        ("fastlaunch.worker.UvicornWorker", "fastlaunch.worker.uvicorn_worker.UvicornWorker", FASTLAUNCH_PROTOCOL),
        # uvicorn-worker's own class, which the image used
        ("uvicorn_worker.UvicornWorker", "uvicorn_worker._workers.UvicornWorker", UVICORN_HTTPTOOLS),
    ],
)
def test_explicit_gunicorn_conf_is_loaded_and_the_settings_reach_gunicorn(
    project: Path, tmp_path: Path, worker_class: str, loaded: str, protocol: str
) -> None:
    # The conf file lives outside the project (an explicit path, not the auto-found gunicorn_conf.py); its
    # when_ready hook reports the master's configuration after fastlaunch's settings and the file are applied.
    dump = tmp_path / "cfg.json"
    port = free_port()
    env = {
        "GUNICORN_CONF": str(HOOKS),
        "CFG_DUMP": str(dump),
        "WEB_CONCURRENCY": "1",
        "TIMEOUT": "37",
        "GRACEFUL_TIMEOUT": "11",
        "KEEP_ALIVE": "3",
        "MAX_REQUESTS": "500",
        "MAX_REQUESTS_JITTER": "50",
        "WORKER_CLASS": worker_class,
    }
    with serve(project, port, env=env):
        runtime = get(port, "/runtime")
    assert dump.is_file(), "the GUNICORN_CONF file's when_ready hook never ran"
    shm = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    assert json.loads(dump.read_text()) == {
        "bind": [f"127.0.0.1:{port}"],
        "workers": 1,
        "timeout": 37,
        "graceful_timeout": 11,
        "keepalive": 3,
        "max_requests": 500,
        "max_requests_jitter": 50,
        "worker_class_str": worker_class,
        "worker_class": loaded,  # the class Gunicorn loaded, not only the string
        "worker_tmp_dir": "/dev/shm" if shm else None,  # the heartbeat file in memory, not on disk
        "errorlog": "-",
    }
    # The class chosen is the one serving: only fastlaunch's sends a response's head with its body.
    assert runtime["protocol"][0] == protocol


def _worker_limit(limits: Path, pid: int) -> int:
    # post_worker_init runs before the worker serves, so a worker that has answered has written its file.
    return int((limits / str(pid)).read_text())


def _wait_until_gone(master: int, worker: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if worker not in child_pids(master):
            return
        time.sleep(0.02)
    raise AssertionError(f"worker {worker} still running after serving its limit; workers: {child_pids(master)}")


def test_each_worker_retires_after_max_requests_plus_its_own_jitter(project: Path, tmp_path: Path) -> None:
    # Gunicorn draws each worker's limit once: max_requests + randint(0, max_requests_jitter), both ends
    # included (gunicorn/workers/base.py); uvicorn-worker hands it to Uvicorn as limit_max_requests. Uvicorn
    # checks the count every 0.1 s, so a fast client gets many answers past the limit (112 for 26, seen). Hence
    # the client goes quickly up to the worker's limit, as the post_worker_init hook reports it, then sends
    # nothing until that worker has exited: the run length is then exact, and the check cannot flake.
    max_requests, jitter, retirements = 20, 10, 8
    limits = tmp_path / "limits"
    limits.mkdir()
    port = free_port()
    env = {
        "WEB_CONCURRENCY": "1",
        "MAX_REQUESTS": str(max_requests),
        "MAX_REQUESTS_JITTER": str(jitter),
        "ACCESS_LOG": "",
        "GUNICORN_CONF": str(HOOKS),
        "WORKER_LIMITS_DIR": str(limits),
    }
    drawn: dict[int, int] = {}  # retired worker -> its limit
    runs: dict[int, int] = {}  # retired worker -> requests it answered
    with serve(project, port, env=env) as proc:
        deadline = time.monotonic() + 30
        answer = get(port)  # the readiness probe was this worker's first request
        for _ in range(retirements):
            pid = answer["pid"]
            limit = drawn[pid] = _worker_limit(limits, pid)
            assert max_requests <= limit <= max_requests + jitter, (pid, limit)
            for _ in range(max_requests + jitter):
                if answer["served"] >= limit or time.monotonic() > deadline:
                    break
                served_before = answer["served"]
                answer = get(port)
                assert answer["pid"] == pid, f"worker {pid} was replaced after {served_before} of {limit} requests"
            assert answer["served"] == limit, (pid, answer, limit)
            _wait_until_gone(proc.pid, pid, deadline)  # it retires on its own, with nothing more asked of it
            runs[pid] = answer["served"]
            answer = get(port)
            assert answer["pid"] not in drawn and answer["served"] == 1, answer  # a fresh worker took over
    assert runs == drawn
    assert all(max_requests <= n <= max_requests + jitter for n in runs.values()), runs
    log = (project / "server.log").read_text()
    for pid, limit in drawn.items():  # retired by the limit, the one Gunicorn drew, not by a crash
        assert f"[{pid}] [INFO] Maximum request limit of {limit} exceeded" in log
    # The jitter took effect: all eight drew +0 with probability 11**-8 (about 5e-9).
    assert max(drawn.values()) > max_requests, drawn


def test_workers_run_uvloop_and_the_httptools_protocol(project: Path) -> None:
    port = free_port()
    with serve(project, port, WEB_CONCURRENCY="1"):
        runtime = get(port, "/runtime")
    assert runtime["loop"] == "uvloop.Loop"
    assert runtime["protocol"][0] == FASTLAUNCH_PROTOCOL
    assert UVICORN_HTTPTOOLS in runtime["protocol"]  # built on Uvicorn's httptools protocol, not h11


def test_error_log_file_takes_gunicorn_and_uvicorn_lines_off_stderr(project: Path, tmp_path: Path) -> None:
    error_log = tmp_path / "error.log"
    port = free_port()
    with serve(project, port, WEB_CONCURRENCY="1", ERROR_LOG=str(error_log)):
        pid = get(port)["pid"]
    written = error_log.read_text()
    console = (project / "server.log").read_text()  # the launcher's stdout and stderr
    for line in (
        f"Listening at: http://127.0.0.1:{port}",
        f"Booting worker with pid: {pid}",
        f"[{pid}] [INFO] Application startup complete",  # Uvicorn's, in the worker
        "Handling signal: term",
        "Shutting down: Master",
    ):
        assert line in written, line
        assert line not in console, line
    assert '"GET / HTTP/1.1" 200' in console and '"GET / HTTP/1.1"' not in written  # the access log stays


def test_error_log_file_takes_the_launchers_own_lines(project: Path, tmp_path: Path) -> None:
    error_log = tmp_path / "error.log"
    port = free_port()
    with serve(project, port, WEB_CONCURRENCY="1", ERROR_LOG=str(error_log)):
        pass
    console = (project / "server.log").read_text()
    assert "serving main:app" not in console
    assert "serving main:app" in error_log.read_text()


def test_no_prestart_skips_the_prestart_script(project: Path) -> None:
    marker = project / "prestart-ran"
    (project / "prestart.sh").write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 3\n")
    # Without the flag the script runs and its code stops the start (its message: test_cli_errors).
    r = run_cli(["run", "--host", "127.0.0.1", "--port", str(free_port())], cwd=project)
    assert r.returncode == 3 and marker.exists(), r.stderr
    marker.unlink()
    port = free_port()
    with serve(project, port, "--no-prestart", WEB_CONCURRENCY="1"):
        assert get(port)["served"] >= 1
    assert not marker.exists()
    assert "Running prestart script" not in (project / "server.log").read_text()


def test_a_log_level_in_gunicorn_cmd_args_wins_over_log_level(project: Path) -> None:
    """As in the image: GUNICORN_CMD_ARGS are applied last, the log level among them."""
    port = free_port()
    with serve(project, port, WEB_CONCURRENCY="1", LOG_LEVEL="warning", GUNICORN_CMD_ARGS="--log-level debug"):
        get(port)
    log = (project / "server.log").read_text()
    assert "[DEBUG] Current configuration:" in log and "[INFO] Booting worker with pid" in log, log
