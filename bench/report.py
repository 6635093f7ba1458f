"""bench/results/latest.md: the conditions, the tables, the plots and the judged ratios."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.instructions import FEW, MANY, Count
from bench.judge import Verdict
from bench.plan import Config
from bench.reliability import Reliability
from bench.stats import ConfigStats


@dataclass
class Run:
    """Everything a report is made of."""

    mode: str
    conditions: dict[str, str]
    machine: dict[str, str]
    versions: dict[str, str]
    commands: dict[str, str]
    configs: list[Config]
    stats: dict[str, ConfigStats]
    verdicts: list[Verdict]
    reliability: list[Reliability] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    instructions: list[Count] = field(default_factory=list)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    rows = [[v.name, _num(v.value, "{:.2f}"), v.goal or "–", v.verdict, v.detail] for v in verdicts]
    return _table(["ratio", "value", "goal", "verdict", "note"], rows)


def _throughput(run: Run) -> list[str]:
    lines: list[str] = []
    for app in dict.fromkeys(c.app for c in run.configs):
        members = [c for c in run.configs if c.app == app and c.key in run.stats]
        if not members:
            continue
        paths = list(app.endpoints)
        header = ["server", *[f"`{p}` req/s" for p in paths], *[f"`{p}` p50 / p99 ms, CPU/req" for p in paths]]
        rows = []
        for config in members:
            stats = run.stats[config.key]
            cells, lat = [], []
            for path in paths:
                e = stats.endpoints.get(path)
                cells.append(f"**{e.rps.median:.0f}** ({e.rps.low:.0f}–{e.rps.high:.0f})" if e else "–")
                cpu = f", {e.cpu_us:.0f} µs" if e and e.cpu_us is not None else ""
                lat.append(f"{e.p50_ms:.1f} / {e.p99_ms:.1f}{cpu}" if e else "–")
            rows.append([config.label, *cells, *lat])
        lines += [f"### {app.label}", "", *_table(header, rows), ""]
    return lines


def _health(run: Run) -> list[str]:
    rows = []
    for config in run.configs:
        stats = run.stats.get(config.key)
        if stats is None:
            continue
        errors = sum(e.socket_errors for e in stats.endpoints.values())
        non_2xx = sum(e.non_2xx for e in stats.endpoints.values())
        start = stats.startup_s
        rows.append([
            f"{config.label}, {config.app.label}",
            f"{start.median:.2f} ({start.low:.2f}–{start.high:.2f})" if start else "–",
            _num(stats.master_mib), f"{_num(stats.worker_mib)} × {stats.workers}",
            str(errors), str(non_2xx), f"{stats.runs - stats.failed_runs}/{stats.runs}",
        ])  # fmt: skip
    header = ["configuration", "startup to first 200, s", "master RSS MiB", "per-worker RSS MiB"]
    return _table([*header, "socket errors", "non-2xx", "runs ok"], rows)


def _reliability(results: list[Reliability]) -> list[str]:
    rows = []
    for r in results:
        kinds = ", ".join(f"{k} {n}" for k, n in r.failures.items()) or "none"
        if r.error:
            what = f"error: {r.error.splitlines()[0]}"
        elif r.scenario == "hup":
            reload = f"all workers replaced in {r.reload_s:.1f} s" if r.reload_s is not None else "workers NOT replaced"
            what = f"{reload}; server {'kept running' if r.alive else 'EXITED'}"
        elif r.scenario == "term":
            drain = f"exited {r.drain_s:.1f} s after SIGTERM" if r.drain_s is not None else "did NOT exit in 30 s"
            what = f"{r.in_flight} in flight at SIGTERM, {r.in_flight_failed} of them failed; {drain}; "
            what += f"after SIGTERM: {r.after_ok} ok, {r.after_failed} refused/failed (expected once it stops)"
        else:
            what = (
                f"a replacement served {r.recovery_s:.2f} s after SIGKILL" if r.recovery_s else "NO replacement in 30 s"
            )
        rows.append([r.server, r.scenario.upper(), str(r.ok), str(r.failed_while_serving()), kinds, what])
    header = ["server", "signal", "ok", "failed", "failure kinds", "what happened"]
    return _table(header, rows)


def _instructions(counts: list[Count]) -> list[str]:
    stacks = list(dict.fromkeys(c.stack for c in counts))
    by = {(c.app, c.stack): c.per_request for c in counts}
    rows = [
        [app, *[_num(by.get((app, stack)), "{:,.0f}") for stack in stacks]]
        for app in dict.fromkeys(c.app for c in counts)
    ]
    intro = (
        f"`python -m bench.inprocess --instructions`: valgrind's callgrind, {MANY} minus {FEW} requests on one"
        " keep-alive connection through an in-memory transport (no kernel, no sockets); the same from run to run."
        " `fastlaunch+watchdog` runs the event-loop watchdog as LOOP_BLOCK_WARN=1 does; its work is paced by the"
        " clock, so under callgrind's slowdown its count is an upper bound."
    )
    return [intro, "", *_table(["app", *stacks], rows)]


def render(run: Run) -> str:
    lines = [f"# fastlaunch benchmark ({run.mode})", ""]
    lines += [f"Measured {run.machine['date']} on {run.machine['cpu']}, {run.machine['memory']}, {run.machine['os']},"]
    lines += [f"Python {run.machine['python']}.", ""]
    lines += [f"- **{key}**: {value}" for key, value in run.conditions.items()]
    lines += ["", "## Judged ratios", "", *verdict_lines(run.verdicts), ""]
    lines += ["## Throughput and latency", ""]
    lines += [
        "Requests/s: median of the repetitions (min–max). Latency: wrk's p50 / p99, medians. CPU/req: CPU time"
        " the server's processes (master and workers) spent per request, from /proc: steadier than req/s"
        " when the machine is shared.",
        "",
    ]
    lines += _throughput(run)
    lines += [f"![{p.stem}]({p.name})" for p in run.plots] + [""]
    if run.instructions:
        lines += ["## Instructions per request", "", *_instructions(run.instructions), ""]
    lines += ["## Startup, memory and errors", "", "RSS read from /proc after the load; medians of the runs.", ""]
    lines += _health(run) + [""]
    if run.reliability:
        lines += ["## Reliability under load", ""]
        lines += [
            "A bounded asyncio client (8 keep-alive connections: 6 on `/`, 2 on `/sleep?s=1`; 6 on `/` for"
            " SIGKILL) counts every request that got no 2xx; it reconnects when the server closed an idle"
            " connection, as HTTP clients do. SIGTERM's count excludes requests sent after the signal.",
            "",
            *_reliability(run.reliability),
            "",
        ]
    lines += ["## Commands", "", *[f"- {name}: `{cmd}`" for name, cmd in run.commands.items()], ""]
    lines += ["## Versions", "", *_table(["component", "version"], [[k, v] for k, v in run.versions.items()]), ""]
    if run.skipped or run.errors:
        lines += ["## Skipped and failed", "", *[f"- skipped: {s}" for s in run.skipped]]
        lines += [f"- failed: {e.splitlines()[0]}" for e in run.errors] + [""]
    return "\n".join(lines)
