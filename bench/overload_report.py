"""The overload scenario's report (overload.md) and plot (overload.png): goodput and admitted p99 against
offered load, one line per server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import machine
from bench.judge import overload_verdicts
from bench.report import verdict_lines


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def render(data: dict[str, Any], plot: Path | None) -> str:
    lines = [
        "# Overload: open-loop load against capacity",
        "",
        f"Capacity (closed-loop, 16 connections, fastlaunch OVERLOAD=off, `/cpu` of bench/apps/cpuapp.py, "
        f"{data['workers']} workers): **{data['capacity_rps']:.0f} req/s**. Then each server gets the same "
        f"open-loop steps of {data['step_s']:g} s (bench/openloop.py), each request with a {data['deadline_s']:g} s "
        "client deadline. Goodput: 2xx answered within the deadline, per second. p50/p99: of the admitted (2xx). "
        "Recovery: seconds into the last 0.5x step until every 0.25 s slice's p99 is within 2x the first step's "
        "(a shed or timed-out request counts as infinitely slow).",
        "",
        f"Machine load average after the run: {machine.load_average()} (a shared machine makes these noisy).",
        "",
        "Reproduce: `python -m bench.overload` (part of `make bench`; `--smoke` for the short form).",
        "",
    ]
    if plot is not None:
        lines += [f"![goodput and p99 against offered load]({plot.name})", ""]
    lines += ["## Judged", "", *verdict_lines(overload_verdicts(data)), ""]
    for server in data["servers"]:
        lines += [f"## {server['name']}", ""]
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
    return "\n".join(lines)


def plot(data: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in data["servers"] if s["steps"]]
    if not servers:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for server in servers:
        steps = server["steps"][:-1]  # the way up; the last step (back to 0.5x) is the recovery
        offered = [s["rate"] for s in steps]
        style = "-" if server["name"].startswith("fastlaunch") else "--"
        axes[0].plot(offered, [s["goodput"] for s in steps], style, marker="o", label=server["name"])
        axes[1].plot(offered, [s["p99_ms"] or float("nan") for s in steps], style, marker="o", label=server["name"])
    axes[0].set_title("Goodput (2xx within 1 s) against offered load", fontsize=10)
    axes[0].set_ylabel("req/s")
    axes[1].set_title("p99 of admitted requests", fontsize=10)
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
