"""Hostile or broken start-up input to a real ``fastlaunch run``: bad GUNICORN_CMD_ARGS stop the start before
prestart with one message, the bind pre-check checks the address Gunicorn will bind, a failed start leaves
nothing in /dev/shm, and a pyproject.toml that is not UTF-8 gives a message, not a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from abuse_kit import isolated_run, startup_project
from support import FASTLAUNCH, free_port, run_cli, running

from fastlaunch.core.exceptions import ExitCode


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return startup_project(tmp_path)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("--no-such-option", "unrecognized arguments: --no-such-option"),
        ("--workers many", "many"),
        ("--keep-alive", "expected one argument"),
        ("--bind '127.0.0.1:1", "No closing quotation"),
    ],
)
def test_bad_gunicorn_cmd_args_stop_before_prestart(project: Path, args: str, problem: str) -> None:
    result, left = isolated_run(project, {"GUNICORN_CMD_ARGS": args})
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert f"GUNICORN_CMD_ARGS={args!r}" in result.stderr and problem in result.stderr
    assert "usage:" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= 4, result.stderr
    assert not (project / "prestart-ran").exists()
    assert left == []


def test_a_failed_start_leaves_nothing_in_dev_shm(project: Path) -> None:
    (project / "gunicorn_conf.py").write_text("raise RuntimeError('broken config file')\n")
    result, left = isolated_run(project, {})
    assert result.returncode != 0 and "broken config file" in result.stderr
    assert left == []


def test_bind_check_checks_the_address_gunicorn_binds(project: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        free = free_port()
        # PORT is taken, but GUNICORN_CMD_ARGS binds elsewhere: the start goes on (it exited 5).
        env = {"HOST": "127.0.0.1", "PORT": str(busy_port), "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{free}"}
        with running(
            [FASTLAUNCH, "run"], cwd=project, env=env, log=tmp_path / "run.log", ready_url=f"http://127.0.0.1:{free}/"
        ):
            pass
        # And the other way round: the --bind address is the one in use.
        r = run_cli(
            ["run"], cwd=project, env={"PORT": str(free_port()), "GUNICORN_CMD_ARGS": f"-b 127.0.0.1:{busy_port}"}
        )
    assert r.returncode == ExitCode.BIND, r.stderr
    assert f"Port {busy_port} on 127.0.0.1 is already in use (GUNICORN_CMD_ARGS --bind)" in r.stderr


def test_pyproject_that_is_not_utf8(project: Path) -> None:
    (project / "pyproject.toml").write_bytes('[project]\nname = "caf\u00e9"\n'.encode("latin-1"))
    r = run_cli(["run"], cwd=project)
    assert r.returncode == ExitCode.CONFIG, r.stderr
    assert "pyproject.toml is not UTF-8" in r.stderr and "Traceback" not in r.stderr
