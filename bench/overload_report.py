"""The overload scenario's report (overload.md) and plot (overload.png): goodput and admitted p99 against
offered load, one line per server, one row per app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import machine
from bench.judge import overload_verdicts
from bench.report import verdict_lines


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def render(data: dict[str, Any], plot: Path | None) -> str:
    minutes = data["seconds"] / 60
    lines = [
        "# Overload: open-loop load against capacity",
        "",
        "Each app's capacity is measured first (closed-loop, 16 connections, fastlaunch OVERLOAD=off, "
        f"{data['workers']} workers, once every worker serves, each connection replaced every 20 requests so that "
        "the workers share them). The peers' fixed bounds (uvicorn `--limit-concurrency`, granian "
        "`--backpressure`, and fastlaunch's `MAX_CONCURRENCY` as the fixed-limit reference) are swept for their "
        f"best goodput at 2x and 3x ({data['sweep_step_s']:g} s of each per value); then every server, each "
        f"swept one at its best value, gets the same open-loop steps of {data['step_s']:g} s (bench/openloop.py), "
        f"each request with a {data['deadline_s']:g} s client deadline. Goodput: 2xx answered within the deadline, "
        "per second. p50/p99: of the admitted (2xx). Recovery: seconds into the last 0.5x step until every 0.25 s "
        "slice's p99 is within 2x the first step's (a shed or timed-out request counts as infinitely slow); "
        "0.00: normal from the first slice.",
        "",
        f"Machine load average after the run: {machine.load_average()} (a shared machine makes these noisy). "
        f"The run took {minutes:.1f} minutes.",
        "",
        "Reproduce: `python -m bench.overload` (part of `make bench`; `--smoke` for the short form).",
        "",
    ]
    if plot is not None:
        lines += [f"![goodput and p99 against offered load]({plot.name})", ""]
    lines += ["## Judged", "", *verdict_lines(overload_verdicts(data)), ""]
    lines += [f"Skipped: {reason}." for reason in data["skipped"]]
    for scenario in data["scenarios"]:
        lines += _scenario(scenario)
    return "\n".join(lines)


def _scenario(scenario: dict[str, Any]) -> list[str]:
    paths = ", ".join(f"`{p}`" for p in scenario["paths"])
    lines = [
        "",
        f"## {scenario['label']}",
        "",
        f"Endpoints, in turn: {paths}. Capacity: **{scenario['capacity_rps']:.0f} req/s**.",
        "",
    ]
    if scenario["sweep"]:
        lines += ["### The fixed bounds swept", "", "| bound | goodput/s at 2x | at 3x | |", "|---|---|---|---|"]
        for row in scenario["sweep"]:
            goodput = row["goodput"]
            cells = [_num(goodput.get(f), "{:.0f}") for f in ("2x", "3x")]
            mark = "best" if row.get("best") else ("FAILED" if row["error"] else "")
            lines.append(f"| {row['name']} | {cells[0]} | {cells[1]} | {mark} |")
        lines.append("")
    for server in scenario["servers"]:
        lines += [f"### {server['name']}", ""]
        if server["error"]:
            lines += [f"FAILED: {server['error']}", ""]
            continue
        lines += [
            "| load | offered/s | goodput/s | p50 ms | p99 ms | shed | timed out | other errors | send lag ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in server["steps"]:
            lines.append(
                f"| {s['factor']:g}x | {s['rate']:.0f} | {s['goodput']:.0f} | {_num(s['p50_ms'], '{:.1f}')} | "
                f"{_num(s['p99_ms'], '{:.1f}')} | {s['shed']:.0%} | {s['timed_out']:.0%} | {s['failed']:.0%} | "
                f"{s['max_lag_ms']:.0f} |"
            )
        recovery = server["recovery_s"]
        lines += [
            "",
            "Back to normal p99 after the spike: "
            + (f"{recovery:.2f} s." if recovery is not None else "not within the step."),
            "",
        ]
    return lines


def plot(data: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [sc for sc in data["scenarios"] if any(s["steps"] for s in sc["servers"])]
    if not drawn:
        return None
    fig, grid = plt.subplots(len(drawn), 2, figsize=(11, 4.5 * len(drawn)), squeeze=False)
    for scenario, axes in zip(drawn, grid, strict=True):
        for server in scenario["servers"]:
            if not server["steps"]:
                continue
            steps = server["steps"][:-1]  # the way up; the last step (back to 0.5x) is the recovery
            offered = [s["rate"] for s in steps]
            style = "-" if server["name"].startswith("fastlaunch") else "--"
            axes[0].plot(offered, [s["goodput"] for s in steps], style, marker="o", label=server["name"])
            p99 = [s["p99_ms"] or float("nan") for s in steps]
            axes[1].plot(offered, p99, style, marker="o", label=server["name"])
        axes[0].set_title(f"{scenario['label']}: goodput (2xx within {data['deadline_s']:g} s)", fontsize=10)
        axes[0].set_ylabel("req/s")
        axes[1].set_title(f"{scenario['label']}: p99 of admitted requests", fontsize=10)
        axes[1].set_ylabel("ms")
        axes[1].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("offered req/s")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(data: dict[str, Any], out: Path) -> None:
    drawn = plot(data, out / "overload.png")
    (out / "overload.md").write_text(render(data, drawn) + "\n")
