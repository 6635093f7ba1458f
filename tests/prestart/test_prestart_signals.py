"""SIGTERM and SIGINT to a real ``fastlaunch run`` while its prestart script runs: the signal reaches the script
(and its children), the launcher waits for it within GRACEFUL_TIMEOUT, says what happened and exits 128 + N."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from support import FASTLAUNCH, free_port, wait_for_log

APP = "async def app(scope, receive, send):\n    pass\n"
# Stops cleanly on SIGTERM or SIGINT; its sleep child would otherwise run on for 60 s.
POLITE = """#!/bin/sh
trap 'echo "script got the signal"; exit 0' TERM INT
sleep 60 &
echo $! > sleeper.pid
echo "script started"
wait $!
"""
# Ignores SIGTERM: only the GRACEFUL_TIMEOUT kill stops it.
STUBBORN = """#!/bin/sh
trap '' TERM
sleep 60 &
echo $! > sleeper.pid
echo "script started"
wait $!
wait $!
"""


def start(project: Path, script: str, **env: str) -> subprocess.Popen[bytes]:
    (project / "main.py").write_text(APP)
    (project / "prestart.sh").write_text(script)
    (project / "prestart.sh").chmod(0o755)
    log = (project / "run.log").open("wb")
    return subprocess.Popen(
        [FASTLAUNCH, "run"],
        cwd=project,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), "APP_MODULE": "main:app", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_is_passed_to_the_script_and_reported(tmp_path: Path, sig: signal.Signals) -> None:
    proc = start(tmp_path, POLITE)
    try:
        wait_for_log(tmp_path / "run.log", "script started")
        sleeper = int((tmp_path / "sleeper.pid").read_text())
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    log = (tmp_path / "run.log").read_text()
    assert code == 128 + sig
    assert "script got the signal" in log
    assert f"fastlaunch received {sig.name} ({int(sig)}) while prestart script" in log
    assert "it exited with code 0; the server was not started" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert not alive(sleeper)  # the script's own child got the signal too


def test_a_script_ignoring_the_signal_is_killed_after_the_graceful_timeout(tmp_path: Path) -> None:
    proc = start(tmp_path, STUBBORN, GRACEFUL_TIMEOUT="2")
    try:
        wait_for_log(tmp_path / "run.log", "script started")
        sleeper = int((tmp_path / "sleeper.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    log = (tmp_path / "run.log").read_text()
    assert code == 128 + signal.SIGTERM
    assert "still runs 2s (GRACEFUL_TIMEOUT) after SIGTERM (15): killing it" in log
    assert "it was killed after GRACEFUL_TIMEOUT=2s" in log
    assert not alive(sleeper)
