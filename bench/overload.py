"""The overload scenario (``python -m bench.overload``; also part of ``make bench`` and, short, ``make bench-smoke``).

Capacity is measured first (closed-loop, fastlaunch with OVERLOAD=off), then every server gets the same
open-loop steps (bench/openloop.py): 0.5x, 1x, 1.5x, 2x and 3x that capacity, then 0.5x again, each request
with a 1 s client deadline. Per server and step: goodput (2xx answered within the deadline, per second), p50/p99
of the admitted (2xx) requests, the share shed (503) and timed out, and the seconds after the spike until
latency is normal again (the p99 of each 0.25 s slice of the last step back within 2x the first step's, with
nothing shed or timed out in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import free_port
from bench.openloop import Step, closed_loop_rate, run_steps
from bench.plan import APPS_DIR
from bench.procs import ServerFailed, start_server
from bench.servers import SERVERS, Launch

RESULTS = Path(__file__).with_name("results")
FACTORS = (0.5, 1.0, 1.5, 2.0, 3.0, 0.5)
DEADLINE = 1.0
SLICE = 0.25  # seconds, for the recovery time
# name: (server kind, environment, extra arguments). The peers' fixed bounds are one value each, not a sweep
# for their best: 2 workers of a ~3 ms endpoint answer ~600/s, so 32 in flight per worker is ~50 ms of queue.
VARIANTS: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "fastlaunch OVERLOAD=auto": ("fastlaunch", {"OVERLOAD": "auto"}, []),
    "fastlaunch OVERLOAD=off": ("fastlaunch", {"OVERLOAD": "off"}, []),
    "gunicorn + uvicorn-worker": ("gunicorn", {}, []),
    "uvicorn --workers": ("uvicorn", {}, []),
    "uvicorn --limit-concurrency 32": ("uvicorn", {}, ["--limit-concurrency", "32"]),
    "granian": ("granian", {}, []),
    "granian --backpressure 32": ("granian", {}, ["--backpressure", "32"]),
    "fastapi run": ("fastapi", {}, []),
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


def recovery(first: Step, last: Step, start: float) -> float | None:
    """Seconds from the last step's start to the first slice from which every slice's p99 is normal."""
    normal = _quantile([f.latency for f in first.fates if 200 <= f.status < 300], 0.99)
    if normal is None:
        return None
    slices = int(last.seconds / SLICE)
    bad = []
    for n in range(slices):
        fates = [f for f in last.fates if start + n * SLICE <= f.due < start + (n + 1) * SLICE]
        # A request shed or timed out is not normal, however slow the first step was.
        p99 = _quantile([f.latency if 200 <= f.status < 300 else float("inf") for f in fates], 0.99)
        bad.append(p99 is None or p99 > 2 * normal)
    for n in range(slices):
        if not any(bad[n:]):
            return n * SLICE
    return None


def command(name: str, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    kind, env, extra = VARIANTS[name]
    args = SERVERS[kind].command(Launch("cpuapp:app", port, workers, False))
    if kind == "granian":  # options before its positional app
        args = [*args[:-1], *extra, args[-1]]
    else:
        args = [*args, *extra]
    return args, env


def measure_capacity(workers: int, seconds: float, logs: Path) -> float:
    port = free_port()
    args, env = command("fastlaunch OVERLOAD=off", port, workers)
    server = start_server(args, cwd=APPS_DIR, env=env, port=port, ready_path="/healthz", log=logs / "capacity.log")
    try:
        asyncio.run(closed_loop_rate(port, "/cpu", connections=16, seconds=min(1.0, seconds / 2)))  # warm-up
        return asyncio.run(closed_loop_rate(port, "/cpu", connections=16, seconds=seconds))
    finally:
        server.stop()


def run_server(name: str, capacity: float, step_s: float, workers: int, logs: Path) -> ServerResult:
    result = ServerResult(name)
    port = free_port()
    args, env = command(name, port, workers)
    log = logs / f"overload-{''.join(c if c.isalnum() else '-' for c in name)}.log"
    try:
        server = start_server(args, cwd=APPS_DIR, env=env, port=port, ready_path="/healthz", log=log)
    except ServerFailed as exc:
        result.error = f"server failed: {exc}"
        return result
    try:
        # A discarded warm-up at 0.5x first: connections opened, code paths warm, as in the first step otherwise.
        steps = [Step(capacity * factor, step_s) for factor in (FACTORS[0], *FACTORS)]
        asyncio.run(run_steps(port, "/cpu", steps, deadline=DEADLINE))
    finally:
        server.stop()
    steps = steps[1:]
    result.steps = [summarize(step, factor) for step, factor in zip(steps, FACTORS, strict=True)]
    result.recovery_s = recovery(steps[0], steps[-1], step_s * len(steps))
    return result


def run_overload(*, smoke: bool, workers: int, out: Path, logs: Path, names: list[str] | None = None) -> dict[str, Any]:
    step_s = 0.3 if smoke else 5.0
    capacity = measure_capacity(workers, 0.5 if smoke else 3.0, logs)
    results = []
    for name in names or (SMOKE_VARIANTS if smoke else VARIANTS):
        result = run_server(name, capacity, step_s, workers, logs)
        results.append(result)
        print(f"overload {name}: {line(result)}", flush=True)
    data = {
        "capacity_rps": capacity,
        "step_s": step_s,
        "deadline_s": DEADLINE,
        "workers": workers,
        "servers": [asdict(r) for r in results],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "overload.json").write_text(json.dumps(data, indent=1))
    from bench.overload_report import write_report  # matplotlib is slow to import

    write_report(data, out)
    return data


def line(result: ServerResult) -> str:
    if result.error:
        return f"FAILED {result.error.splitlines()[0]}"
    steps = ", ".join(f"{s.factor:g}x {s.goodput:.0f}/s" for s in result.steps)
    return f"goodput {steps}; recovery {result.recovery_s if result.recovery_s is not None else 'none'} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="0.3 s steps, fastlaunch (OVERLOAD auto and off) only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--servers", help=f"comma-separated subset of: {'; '.join(VARIANTS)}")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / "raw" / "smoke" if args.smoke else RESULTS)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.servers.split(";")] if args.servers else None
    data = run_overload(smoke=args.smoke, workers=args.workers, out=out, logs=logs, names=names)
    failed = [s["name"] for s in data["servers"] if s["error"]]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
