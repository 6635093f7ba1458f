"""The overload scenario (``python -m bench.overload``; also part of ``make bench`` and, short, ``make bench-smoke``).

Two apps (bench/overload_scenarios.py): (a) a CPU-bound endpoint, (b) the example service with its database
pool. For each, capacity is measured first (closed-loop, fastlaunch with OVERLOAD=off), then the peers' fixed
bounds (uvicorn --limit-concurrency, granian --backpressure, and fastlaunch's MAX_CONCURRENCY as the
fixed-limit reference) are swept for their best goodput at 2x and 3x, then every server, each swept one at its
best, gets the same open-loop steps (bench/openloop.py): 0.5x, 1x, 1.5x, 2x and 3x that capacity, then 0.5x
again, each request with a 1 s client deadline. Per server and step: goodput (2xx answered within the
deadline, per second), p50/p99 of the admitted (2xx) requests, the share shed (503) and timed out, and the
seconds after the spike until latency is normal again (the p99 of each 0.25 s slice of the last step back
within 2x the first step's, with nothing shed or timed out in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.example import ExampleUnavailable
from bench.measure import free_port
from bench.openloop import Step, closed_loop_rate, run_steps
from bench.overload_scenarios import Scenario, scenarios
from bench.plan import AppSpec
from bench.procs import Server, ServerFailed, start_server
from bench.servers import SERVERS, Launch

RESULTS = Path(__file__).with_name("results")
FACTORS = (0.5, 1.0, 1.5, 2.0, 3.0, 0.5)
DEADLINE = 1.0
SLICE = 0.25  # seconds, for the recovery time
STEP_S, SMOKE_STEP_S = 4.0, 0.3
# The peers' fixed bounds are swept for their best goodput at 2x and 3x (each value one short run of those two
# steps); the best then runs the full steps beside the others. Per worker, from a few requests at once to a
# queue of a fair share of the deadline (2 workers of a ~2 ms endpoint: 64 waiting is ~130 ms).
SWEEP = (4, 8, 16, 32, 64)
SWEEP_FACTORS = (2.0, 3.0)
SWEEP_STEP_S = 3.0


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # bench/servers.py
    env: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()


BASE = (
    Variant("fastlaunch OVERLOAD=auto", "fastlaunch", {"OVERLOAD": "auto"}),
    Variant("fastlaunch OVERLOAD=off", "fastlaunch", {"OVERLOAD": "off"}),
    Variant("gunicorn + uvicorn-worker", "gunicorn"),
    Variant("uvicorn --workers", "uvicorn"),
    Variant("granian", "granian"),
    Variant("fastapi run", "fastapi"),
)
# A fixed bound per worker, swept: fastlaunch's MAX_CONCURRENCY (OVERLOAD=off) is the fixed-limit reference.
FAMILIES = {
    "fastlaunch MAX_CONCURRENCY": lambda n: Variant(
        f"fastlaunch MAX_CONCURRENCY={n}", "fastlaunch", {"OVERLOAD": "off", "MAX_CONCURRENCY": str(n)}
    ),
    "uvicorn --limit-concurrency": lambda n: Variant(
        f"uvicorn --limit-concurrency {n}", "uvicorn", extra=("--limit-concurrency", str(n))
    ),
    "granian --backpressure": lambda n: Variant(
        f"granian --backpressure {n}", "granian", extra=("--backpressure", str(n))
    ),
}
SMOKE_VARIANTS = ("fastlaunch OVERLOAD=auto", "fastlaunch OVERLOAD=off")


@dataclass
class StepResult:
    factor: float
    rate: float
    goodput: float  # 2xx within the deadline, per second
    p50_ms: float | None
    p99_ms: float | None
    shed: float  # share answered 503
    timed_out: float  # share without an answer within the deadline
    failed: float  # share of other errors and statuses
    max_lag_ms: float  # how late the generator sent, at worst


@dataclass
class ServerResult:
    name: str
    steps: list[StepResult] = field(default_factory=list)
    recovery_s: float | None = None  # None: never back to normal within the last step
    # Each SLICE of the last step: its p99 in ms, None where a request was shed or timed out within it (or
    # none was sent): what the recovery time was read from.
    last_step_p99_ms: list[float | None] = field(default_factory=list)
    error: str | None = None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(step: Step, factor: float) -> StepResult:
    fates = step.fates
    total = max(1, len(fates))
    ok = [f.latency for f in fates if 200 <= f.status < 300]
    p50, p99 = _quantile(ok, 0.5), _quantile(ok, 0.99)
    shed = sum(1 for f in fates if f.status == 503)
    timed_out = sum(1 for f in fates if f.timed_out)
    return StepResult(
        factor,
        step.rate,
        len(ok) / step.seconds,
        None if p50 is None else p50 * 1e3,
        None if p99 is None else p99 * 1e3,
        shed / total,
        timed_out / total,
        (total - len(ok) - shed - timed_out) / total if fates else 0.0,
        step.max_lag * 1e3,
    )


def slice_p99s(first: Step, last: Step, start: float) -> tuple[float | None, list[float | None]]:
    """The first step's p99 (what is normal) and each SLICE of the last step's p99, in seconds; a request shed
    or timed out counts as infinitely slow, however slow the first step was (None: an empty slice)."""
    normal = _quantile([f.latency for f in first.fates if 200 <= f.status < 300], 0.99)
    slices: list[float | None] = []
    for n in range(int(last.seconds / SLICE)):
        fates = [f for f in last.fates if start + n * SLICE <= f.due < start + (n + 1) * SLICE]
        slices.append(_quantile([f.latency if 200 <= f.status < 300 else float("inf") for f in fates], 0.99))
    return normal, slices


def recovery(first: Step, last: Step, start: float) -> float | None:
    """Seconds from the last step's start to the first slice from which every slice's p99 is normal."""
    normal, slices = slice_p99s(first, last, start)
    if normal is None:
        return None
    bad = [p99 is None or p99 > 2 * normal for p99 in slices]
    for n in range(len(slices)):
        if not any(bad[n:]):
            return n * SLICE
    return None


def command(variant: Variant, app: AppSpec, port: int, workers: int) -> list[str]:
    args = SERVERS[variant.kind].command(Launch(app.app, port, workers, False))
    if variant.kind == "granian":  # options before its positional app
        return [*args[:-1], *variant.extra, args[-1]]
    return [*args, *variant.extra]


def _start(variant: Variant, scenario: Scenario, workers: int, log: Path) -> tuple[Server, int, list[str]]:
    """The server up, and the paths to load on it (the example seeded)."""
    port = free_port()
    app = scenario.app
    args = command(variant, app, port, workers)
    server = start_server(args, cwd=app.cwd, env={**app.env, **variant.env}, port=port, ready_path=app.ready_path,
                          log=log)  # fmt: skip
    try:
        # Every worker up and the server idle: the first 200 comes from the first worker fastlaunch boots.
        server.settle(workers)
        return server, port, scenario.paths(port)
    except Exception:
        server.stop()
        raise


def measure_capacity(scenario: Scenario, workers: int, seconds: float, logs: Path) -> float:
    server, port, paths = _start(BASE[1], scenario, workers, logs / f"capacity-{scenario.name}.log")
    try:
        asyncio.run(closed_loop_rate(port, paths, connections=16, seconds=min(1.0, seconds / 2)))  # warm-up
        return asyncio.run(closed_loop_rate(port, paths, connections=16, seconds=seconds))
    finally:
        server.stop()


def run_server(
    variant: Variant,
    scenario: Scenario,
    capacity: float,
    *,
    factors: tuple[float, ...] = FACTORS,
    step_s: float,
    workers: int,
    logs: Path,
) -> ServerResult:
    result = ServerResult(variant.name)
    log = logs / f"overload-{scenario.name}-{''.join(c if c.isalnum() else '-' for c in variant.name)}.log"
    try:
        server, port, paths = _start(variant, scenario, workers, log)
    except (ServerFailed, ExampleUnavailable, OSError) as exc:
        result.error = f"server failed: {exc}"
        return result
    try:
        # A discarded warm-up at 0.5x first: connections opened, code paths warm, as in the first step otherwise.
        steps = [Step(capacity * factor, step_s) for factor in (FACTORS[0], *factors)]
        asyncio.run(run_steps(port, paths, steps, deadline=DEADLINE))
    finally:
        server.stop()
    steps = steps[1:]
    result.steps = [summarize(step, factor) for step, factor in zip(steps, factors, strict=True)]
    if factors == FACTORS:
        start = step_s * len(steps)
        result.recovery_s = recovery(steps[0], steps[-1], start)
        _, slices = slice_p99s(steps[0], steps[-1], start)
        result.last_step_p99_ms = [None if p is None or p == float("inf") else round(p * 1e3, 2) for p in slices]
    return result


def sweep(
    family: str, scenario: Scenario, capacity: float, *, step_s: float, workers: int, logs: Path
) -> list[dict[str, Any]]:
    """Each value's goodput at 2x and 3x (short runs of those two steps), in the order swept."""
    rows = []
    for value in SWEEP:
        variant = FAMILIES[family](value)
        result = run_server(
            variant, scenario, capacity, factors=SWEEP_FACTORS, step_s=step_s, workers=workers, logs=logs
        )
        goodput = {f"{s.factor:g}x": s.goodput for s in result.steps}
        rows.append({"family": family, "value": value, "name": variant.name, "goodput": goodput, "error": result.error})
        print(f"overload sweep {scenario.name} {variant.name}: {line(result)}", flush=True)
    return rows


def best_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The value with the most goodput at 2x and 3x together."""
    ran = [row for row in rows if not row["error"] and row["goodput"]]
    return max(ran, key=lambda row: sum(row["goodput"].values()), default=None)


def variants_for(names: list[str] | None, smoke: bool) -> tuple[list[Variant], list[str]]:
    """The fixed variants and the swept families asked for (all by default; smoke: fastlaunch's two)."""
    wanted = names or (list(SMOKE_VARIANTS) if smoke else [v.name for v in BASE] + list(FAMILIES))
    unknown = [n for n in wanted if n not in FAMILIES and n not in {v.name for v in BASE}]
    if unknown:
        raise SystemExit(f"unknown server(s) {'; '.join(unknown)}; choose from {'; '.join(ALL_NAMES)}")
    return [v for v in BASE if v.name in wanted], [f for f in FAMILIES if f in wanted]


def run_scenario(
    scenario: Scenario, *, smoke: bool, step_s: float, workers: int, logs: Path, names: list[str] | None
) -> dict[str, Any]:
    fixed, families = variants_for(names, smoke)
    data: dict[str, Any] = {
        "name": scenario.name,
        "label": scenario.app.label,
        "paths": list(scenario.app.endpoints),
        "capacity_rps": 0.0,
        "sweep": [],
        "servers": [],
    }
    try:
        capacity = measure_capacity(scenario, workers, 0.5 if smoke else 3.0, logs)
    except (ServerFailed, ExampleUnavailable, OSError) as exc:
        data["servers"] = [asdict(ServerResult("capacity (fastlaunch OVERLOAD=off)", error=f"server failed: {exc}"))]
        return data
    print(f"overload {scenario.name}: capacity {capacity:.0f} req/s", flush=True)
    swept = []
    variants = list(fixed)
    for family in families:
        rows = sweep(family, scenario, capacity, step_s=min(step_s, SWEEP_STEP_S), workers=workers, logs=logs)
        best = best_of(rows)
        for row in rows:
            row["best"] = row is best
        swept += rows
        if best is not None:
            variants.append(FAMILIES[family](best["value"]))
    results = []
    for variant in variants:
        result = run_server(variant, scenario, capacity, step_s=step_s, workers=workers, logs=logs)
        results.append(result)
        print(f"overload {scenario.name} {variant.name}: {line(result)}", flush=True)
    return data | {"capacity_rps": capacity, "sweep": swept, "servers": [asdict(r) for r in results]}


def run_overload(
    *,
    smoke: bool,
    workers: int,
    out: Path,
    logs: Path,
    names: list[str] | None = None,
    databases: list[str] | None = None,
    step_s: float | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    step_s = step_s or (SMOKE_STEP_S if smoke else STEP_S)
    skipped: list[str] = []
    if databases is None:
        databases = ["sqlite"] if smoke else ["postgresql"]
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="fastlaunch-overload-"))
        stack.callback(shutil.rmtree, work, True)
        runs = [
            run_scenario(scenario, smoke=smoke, step_s=step_s, workers=workers, logs=logs, names=names)
            for scenario in scenarios(databases, stack, work, skipped)
        ]
    data = {
        "step_s": step_s,
        "sweep_step_s": min(step_s, SWEEP_STEP_S),
        "deadline_s": DEADLINE,
        "workers": workers,
        "seconds": time.monotonic() - started,
        "skipped": skipped,
        "scenarios": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "overload.json").write_text(json.dumps(data, indent=1))
    from bench.overload_report import write_report  # matplotlib is slow to import

    write_report(data, out)
    return data


def failures(data: dict[str, Any]) -> list[str]:
    """Every server that did not run, named by scenario."""
    return [
        f"overload {run['name']} {server['name']}: {server['error']}"
        for run in data["scenarios"]
        for server in [*run["servers"], *run["sweep"]]
        if server["error"]
    ]


def run_count(data: dict[str, Any]) -> int:
    return sum(len(run["servers"]) + len(run["sweep"]) for run in data["scenarios"])


def line(result: ServerResult) -> str:
    if result.error:
        return f"FAILED {result.error.splitlines()[0]}"
    steps = ", ".join(f"{s.factor:g}x {s.goodput:.0f}/s" for s in result.steps)
    if len(result.steps) < len(FACTORS):
        return f"goodput {steps}"
    return f"goodput {steps}; recovery {result.recovery_s if result.recovery_s is not None else 'none'} s"


ALL_NAMES = [v.name for v in BASE] + list(FAMILIES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_STEP_S:g} s steps, fastlaunch (OVERLOAD auto and off) only, the example on SQLite",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--servers", help=f"semicolon-separated subset of: {'; '.join(ALL_NAMES)}")
    parser.add_argument(
        "--databases",
        help="the example's databases: sqlite,postgresql (default postgresql; smoke sqlite; empty: no example)",
    )
    parser.add_argument("--step-s", type=float, help=f"seconds per step (default {STEP_S:g}; sweep {SWEEP_STEP_S:g})")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / "raw" / "smoke" if args.smoke else RESULTS)
    logs = out / "raw" / "logs" if out == RESULTS else out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.servers.split(";")] if args.servers else None
    databases = None if args.databases is None else [d for d in args.databases.split(",") if d]
    data = run_overload(
        smoke=args.smoke, workers=args.workers, out=out, logs=logs, names=names, databases=databases, step_s=args.step_s
    )
    for reason in data["skipped"]:
        print(f"skipped: {reason}")
    failed = failures(data)
    for line_ in failed:
        print(f"FAILED: {line_}", file=sys.stderr)
    print(f"overload: {data['seconds']:.0f} s in all")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
