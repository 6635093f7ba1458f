"""bench.memory end to end on the smallest scale: fastlaunch with and without PRELOAD on a small model app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import ROOT


def test_memory_bench_measures_sharing_and_replacement(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--apps", "model", "--model-mb", "48", "--requests", "50",
         "--workers", "2", "--servers", "fastlaunch,fastlaunch PRELOAD=on", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "bench.memory: 2 passed, 0 failed"
    rows = {row["variant"]: row for row in json.loads((tmp_path / "memory.json").read_text())}
    plain, preload = rows["fastlaunch"], rows["fastlaunch PRELOAD=on"]
    for row in (plain, preload):
        assert len(row["loaded"]["worker_uss"]) == 2 and row["failed"] == 0 and row["replace_s"] > 0
    # Each plain worker holds its own 48 MiB model; preloaded workers share the master's.
    assert min(plain["loaded"]["worker_uss"]) > 48 * 2**20
    assert max(preload["loaded"]["worker_uss"]) < max(plain["loaded"]["worker_uss"]) / 3
    report = (tmp_path / "memory.md").read_text()
    assert "| fastlaunch PRELOAD=on |" in report and "--preload on" in report
