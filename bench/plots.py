"""PNG plots of a run: throughput (median with min-max bars), latency, memory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench.plan import Config  # noqa: E402
from bench.servers import SERVERS  # noqa: E402
from bench.stats import ConfigStats  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLORS = {"fastlaunch": "#d62728", "gunicorn": "#1f77b4", "uvicorn": "#2ca02c", "fastapi": "#9467bd"}
COLORS["granian"] = "#ff7f0e"
COLORS["fastlaunch-nowatchdog"] = "#f4a3a3"
COLORS["fastlaunch-overload"] = "#8c1c13"


def _grouped(configs: list[Config], stats: dict[str, ConfigStats]) -> dict[str, list[Config]]:
    """Per app, the configurations measured on all its endpoints (the access-log-on extras left out)."""
    groups: dict[str, list[Config]] = {}
    for config in configs:
        if config.key in stats and config.endpoints == config.app.endpoints:
            groups.setdefault(config.app.label, []).append(config)
    return groups


def _bars(ax: Axes, configs: list[Config], stats: dict[str, ConfigStats], metric: str) -> None:
    endpoints = list(configs[0].endpoints)
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        data = [stats[config.key].endpoints.get(path) for path in endpoints]
        xs = [j + (i - (len(configs) - 1) / 2) * width for j in range(len(endpoints))]
        if metric == "rps":
            heights = [d.rps.median if d else 0.0 for d in data]
            errors = [
                [d.rps.median - d.rps.low if d else 0.0 for d in data],
                [d.rps.high - d.rps.median if d else 0.0 for d in data],
            ]
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=config.label, color=COLORS[config.server])
        else:
            heights = [(d.p50_ms if metric == "p50" else d.p99_ms) if d else 0.0 for d in data]
            ax.bar(xs, heights, width, label=config.label, color=COLORS[config.server])
    ax.set_xticks(range(len(endpoints)), endpoints, fontsize=8)


def throughput(configs: list[Config], stats: dict[str, ConfigStats], path: Path) -> None:
    groups = _grouped(configs, stats)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups) + 1, 4.5), squeeze=False)
    for ax, (label, members) in zip(axes[0], groups.items(), strict=True):
        _bars(ax, members, stats, "rps")
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("requests/s (median, min-max)")
        ax.legend(fontsize=7)
    fig.suptitle("Throughput, wrk -c64, 2 workers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency(configs: list[Config], stats: dict[str, ConfigStats], path: Path) -> None:
    docs = _grouped(configs, stats).get("FastAPI docs app", [])
    if not docs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, metric in zip(axes, ("p50", "p99"), strict=True):
        _bars(ax, docs, stats, metric)
        ax.set_title(f"{metric} latency, FastAPI docs app", fontsize=10)
        ax.set_ylabel("ms (median of runs)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def memory(configs: list[Config], stats: dict[str, ConfigStats], path: Path) -> None:
    docs = _grouped(configs, stats).get("FastAPI docs app", [])
    if not docs:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = [SERVERS[c.server].label for c in docs]
    master = [stats[c.key].master_mib or 0.0 for c in docs]
    workers = [(stats[c.key].worker_mib or 0.0) * stats[c.key].workers for c in docs]
    ax.bar(labels, master, label="master", color="#7f7f7f")
    ax.bar(labels, workers, bottom=master, label="workers (all)", color="#bcbd22")
    ax.set_ylabel("RSS, MiB (after load)")
    ax.set_title("Memory, FastAPI docs app, 2 workers", fontsize=10)
    ax.tick_params(axis="x", labelsize=7, rotation=15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_all(configs: list[Config], stats: dict[str, ConfigStats], out: Path) -> list[Path]:
    paths = [out / "throughput.png", out / "latency.png", out / "memory.png"]
    for draw, path in zip((throughput, latency, memory), paths, strict=True):
        draw(configs, stats, path)
    return [p for p in paths if p.exists()]
