"""bench/ end to end on the smallest scale: fastlaunch serving the docs app, real wrk, report and plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import ROOT, require_tool


def test_bench_measures_reports_and_plots(tmp_path: Path) -> None:
    require_tool("wrk", "the bench's load generator")
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--servers", "fastlaunch", "--no-reliability", "--no-example",
         "--no-overload", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed, 0 failed" in done.stdout.splitlines()[-1]

    samples = {s["key"]: s for s in json.loads((out / "latest.json").read_text())["samples"]}
    assert set(samples) == {"fastlaunch/docs/nolog", "fastlaunch/docs/log", "fastlaunch/raw/nolog"}
    docs = samples["fastlaunch/docs/nolog"]
    assert set(docs["results"]) == {"/", "/items/5?q=somequery", "/async"}
    for result in docs["results"].values():
        assert result["requests"] > 0 and result["status"] == 0
    assert len(docs["worker_rss"]) == 2 and all(rss > 0 for rss in docs["worker_rss"])
    assert docs["master_rss"] > 0 and docs["startup_s"] > 0

    report = (out / "latest.md").read_text()
    # One repetition: the median shown is the run's own figure.
    assert f"**{docs['results']['/']['rps']:.0f}**" in report
    assert "access log on / off, fastlaunch run" in report
    for name in ("throughput", "latency", "memory"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{name}]({name}.png)" in report


def test_inprocess_bench_counts_writes_per_request() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", "--rounds", "1", "--batches", "2", "--requests", "50"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {tuple(line.split()[:2]): line.split()[2:4] for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {(app, stack) for app in ("docs", "raw") for stack in ("uvicorn", "fastlaunch")}
    for (_, stack), (cpu, writes) in rows.items():
        # Uvicorn's protocol writes head and body apart; fastlaunch's sends them in one write.
        assert float(cpu) > 0 and float(writes) == (2.0 if stack == "uvicorn" else 1.0)


def test_overload_scenario_reports_every_step_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench.overload", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "overload.json").read_text())
    # The CPU-bound endpoint, then the example service on its database (SQLite in the short form).
    assert [s["name"] for s in data["scenarios"]] == ["cpu", "example-sqlite"]
    assert data["seconds"] > 0
    for scenario in data["scenarios"]:
        assert scenario["capacity_rps"] > 0
        servers = scenario["servers"]
        assert [s["name"] for s in servers] == ["fastlaunch OVERLOAD=auto", "fastlaunch OVERLOAD=off"]
        for server in servers:
            assert [step["factor"] for step in server["steps"]] == [0.5, 1.0, 1.5, 2.0, 3.0, 0.5]
            assert all(step["rate"] > 0 for step in server["steps"])
            assert len(server["last_step_p99_ms"]) == 1  # the 0.3 s last step's one 0.25 s slice
        # Only the guarded server sheds: OVERLOAD=off answers or times out, never a 503.
        assert all(step["shed"] == 0 for step in servers[1]["steps"])
    report = (out / "overload.md").read_text()
    assert "overload, CPU-bound `/cpu`: goodput at 2x / at 1x" in report
    assert "overload, example service on sqlite: goodput at 2x / at 1x" in report
    assert (out / "overload.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overload_sweeps_a_fixed_bound_and_runs_its_best(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench.overload", "--smoke", "--servers", "granian --backpressure", "--databases", "",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (scenario,) = json.loads((out / "overload.json").read_text())["scenarios"]
    sweep = scenario["sweep"]
    assert [row["value"] for row in sweep] == [4, 8, 16, 32, 64]
    assert all(set(row["goodput"]) == {"2x", "3x"} for row in sweep)
    (best,) = [row for row in sweep if row["best"]]
    assert best["goodput"] == max((row["goodput"] for row in sweep), key=lambda g: g["2x"] + g["3x"])
    # The best value then runs the full steps, as the peer the goals are judged against.
    assert [s["name"] for s in scenario["servers"]] == [best["name"]]
    assert len(scenario["servers"][0]["steps"]) == 6


def test_instruction_count_child_serves_every_stack() -> None:
    """What `--instructions` runs under callgrind, here without it: each stack serves the raw app."""
    for stack in ("uvicorn", "fastlaunch", "fastlaunch+watchdog"):
        done = subprocess.run(
            [sys.executable, "-m", "bench.instructions", stack, "rawasgi:app", "/", "50", "-"],
            cwd=ROOT / "bench" / "apps", env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
