"""A sweep of garbage values across every setting against a real ``fastlaunch run``: each start is refused with
one error message and a documented exit code, no traceback, before prestart runs, and nothing is left in
/dev/shm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from abuse_kit import isolated_run, startup_project

from fastlaunch.core.exceptions import ExitCode
from fastlaunch.core.settings import SETTINGS

C, A, B = ExitCode.CONFIG, ExitCode.APP_NOT_FOUND, ExitCode.BIND
GARBAGE: list[tuple[str, str, int]] = [
    ("APP_MODULE", "nosuchmodule:app", A),
    ("APP_MODULE", "main:nosuch", A),
    ("APP_MODULE", ":", A),
    ("MODULE_NAME", "nosuchmodule", A),
    ("VARIABLE_NAME", "nosuch", A),
    ("PRE_START_PATH", "/nonexistent/prestart.sh", ExitCode.PRESTART),
    ("DATABASE_URL", "not a url", C),
    ("DB_WAIT_TIMEOUT", "-1", C),
    ("DB_WAIT_TIMEOUT", "1e999", C),
    ("MIGRATE", "maybe", C),
    ("WEB_CONCURRENCY", "0", C),
    ("WEB_CONCURRENCY", "abc", C),
    ("WORKERS_PER_CORE", "1e308", C),
    ("WORKERS_PER_CORE", "nan", C),
    ("WORKERS_PER_CORE", "inf", C),
    ("WORKERS_PER_CORE", "-1", C),
    ("MAX_WORKERS", "0", C),
    ("WORKER_MEMORY", "lots", C),
    ("WORKER_MEMORY", "-5M", C),
    ("WORKER_CLASS", "nosuch.Worker", C),
    ("WORKER_CLASS", "os.path", C),
    ("WORKER_CLASS", "nosuch", C),
    ("WORKER_CLASS", "gunicorn.workers.sync", C),
    ("WORKER_CLASS", "fastlaunch.worker.nosuch.Worker", C),
    ("WORKER_USER", "nosuchuser", C),
    ("MAX_REQUESTS", "-1", C),
    ("MAX_REQUESTS_JITTER", "x", C),
    ("MAX_WORKER_MEMORY", "huge", C),
    ("PRELOAD", "maybe", C),
    ("HOST", "not a host", C),
    ("PORT", "0", C),
    ("PORT", "70000", C),
    ("PORT", "http", C),
    ("BIND", "fd://999", B),
    ("BIND", "fd://1", B),  # open, but not a socket
    ("BIND", "fd://abc", C),
    ("BIND", "unix:", C),
    ("BIND", "ftp://example.com", C),
    ("BIND", "[::1]:99999", C),
    ("KEEP_ALIVE", "-1", C),
    ("KEEP_ALIVE", "99999999999999999999", C),
    ("HEADER_TIMEOUT", "x", C),
    ("BODY_TIMEOUT", "-3", C),
    ("BODY_MIN_RATE", "fast", C),
    ("WS_MAX_SIZE", "huge", C),
    ("WS_MAX_SIZE", "0", C),
    ("WS_PING_INTERVAL", "-1", C),
    ("WS_PING_TIMEOUT", "1e308", C),
    ("WS_PER_MESSAGE_DEFLATE", "maybe", C),
    ("OVERLOAD", "sometimes", C),
    ("MAX_CONCURRENCY", "-3", C),
    ("MAX_CONCURRENCY", "1e308", C),
    ("HEALTHCHECK_PATH", "healthz", C),
    ("HEALTHCHECK_PATH", "/a b", C),
    ("TIMEOUT", "-1", C),
    ("GRACEFUL_TIMEOUT", "1e308", C),
    ("REQUEST_TIMEOUT", "-1", C),
    ("REQUEST_TIMEOUT", "1e308", C),
    ("LOOP_BLOCK_WARN", "nan", C),
    ("LOOP_BLOCK_WARN", "1e308", C),
    ("SHUTDOWN_DELAY", "x", C),
    ("STARTUP_TIMEOUT", "-1", C),
    ("GUNICORN_CONF", "/nonexistent/gunicorn_conf.py", C),
    ("GUNICORN_CMD_ARGS", "--workers abc", C),
    ("LOG_LEVEL", "loud", C),
    ("ACCESS_LOG", "/nonexistent/dir/a.log", C),
    ("ACCESS_LOG", "/", C),
    ("ERROR_LOG", "/nonexistent/dir/e.log", C),
    ("ERROR_LOG", "/proc", C),
    ("LOG_FORMAT", "xml", C),
    ("METRICS", "maybe", C),
    ("METRICS_PORT", "0", C),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return startup_project(tmp_path)


def test_the_sweep_covers_every_setting_that_can_be_wrong() -> None:
    # Free text (a path prefix, proxy list, extra arguments that are checked elsewhere) has no garbage.
    anything_goes = {"ROOT_PATH", "FORWARDED_ALLOW_IPS"}
    swept = {env for env, _, _ in GARBAGE}
    assert {s.env for s in SETTINGS if s.env} - anything_goes - swept == set()
    assert len(GARBAGE) >= 46


@pytest.mark.parametrize(("env", "value", "code"), GARBAGE, ids=[f"{e}={v}" for e, v, _ in GARBAGE])
def test_a_garbage_setting_gives_one_message_and_its_exit_code(project: Path, env: str, value: str, code: int) -> None:
    result, left = isolated_run(project, {"DB_WAIT_TIMEOUT": "1", env: value})
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    errors = re.findall(r"^Error: .*$", result.stderr, re.M)
    assert len(errors) == 1, result.stderr
    assert env in result.stderr or "Fix:" in result.stderr, result.stderr  # names the setting, or the fix
    assert not (project / "prestart-ran").exists()
    assert left == []
