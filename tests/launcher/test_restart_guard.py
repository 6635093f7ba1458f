"""Workers that cannot stay up, on a real `fastlaunch run`: a MAX_WORKER_MEMORY below a worker's size at boot
stops the start with one line naming both figures (exit code 12), and workers that crash at every start are
replaced at growing intervals, with one log line, instead of in a fork loop."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

from support import ASSETS, FASTLAUNCH, free_port, stop

from fastlaunch.core.exceptions import ExitCode


def project(tmp_path: Path, asset: str) -> Path:
    shutil.copy(ASSETS / asset / "main.py", tmp_path / "main.py")
    return tmp_path


def run(cwd: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FASTLAUNCH, "run"],
        cwd=cwd,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_a_fixed_cap_below_the_boot_size_stops_the_start(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    proc = run(project(tmp_path, "abuse"), log, MAX_WORKER_MEMORY="1M", WEB_CONCURRENCY="2")
    try:
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    text = log.read_text()
    assert code == ExitCode.MEMORY_CAP, text
    both_figures = r"MAX_WORKER_MEMORY=1 MiB \(environment \(MAX_WORKER_MEMORY\)\) is below the \d+ MiB \(USS\)"
    assert re.search(both_figures, text), text
    assert text.count("Booting worker") <= 3, text  # not a loop of replacements
    assert "Traceback" not in text


def test_workers_crashing_at_every_start_are_replaced_ever_more_slowly(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    proc = run(project(tmp_path, "crashloop"), log, WEB_CONCURRENCY="1")
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and log.read_text().count("Booting worker") < 10:
            time.sleep(0.5)
    finally:
        stop(proc, signal.SIGTERM)
    text = log.read_text()
    assert text.count("replacements now wait") == 1, text  # one line, however long it repeats
    assert "for the same reason (crash)" in text
    boots = [
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S %z")
        for m in re.findall(r"^\[([^\]]+)\] \[\d+\] \[INFO\] Booting worker", text, re.M)
    ]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(boots, boots[1:], strict=False)]
    # After five crashes the gaps grow: 1 s, 2 s, 4 s ... (each start itself takes about a second here).
    assert len(gaps) >= 7, text
    assert gaps[-1] >= 3, gaps
