"""``python -m bench.memory``: what each worker costs in memory, idle and after requests, and how long a
SIGKILLed worker takes to be replaced, for fastlaunch (PRELOAD off and on) beside `gunicorn --preload`,
`uvicorn --workers` and granian, on the docs app and a "model" app (MODEL_MB of data allocated at import).

Measured from /proc/PID/smaps_rollup: USS (Private_Clean + Private_Dirty: what the process alone holds, so what
one more worker adds) and PSS (shared pages split among the processes sharing them: the sum over a server's
processes is its real footprint). RSS would count a shared model in every worker.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.measure import free_port
from bench.plan import APPS_DIR
from bench.procs import ServerFailed, http_get, start_server, workers_of
from bench.servers import SERVERS, Launch, display_command
from fastlaunch.core.memory import smaps_rollup

MiB = 2**20
RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Variant:
    name: str
    command: Callable[[Launch], list[str]]


def _with(server: str, *extra: str) -> Callable[[Launch], list[str]]:
    return lambda launch: [*SERVERS[server].command(launch), *extra]


VARIANTS = {
    v.name: v
    for v in (
        Variant("fastlaunch", _with("fastlaunch")),
        Variant("fastlaunch PRELOAD=on", _with("fastlaunch", "--preload", "on")),
        Variant("gunicorn --preload", _with("gunicorn", "--preload")),
        Variant("uvicorn --workers", _with("uvicorn")),
        Variant("granian", _with("granian")),
    )
}
APPS = {"docs": ("docsapp:app", "/items/{n}?q=x"), "model": ("modelapp:app", "/predict/{n}")}


@dataclass
class Snapshot:
    master_uss: int
    master_pss: int
    worker_uss: list[int]
    worker_pss: list[int]

    @property
    def total_pss(self) -> int:
        return self.master_pss + sum(self.worker_pss)


@dataclass
class Row:
    variant: str
    app: str
    command: str
    idle: Snapshot | None = None
    loaded: Snapshot | None = None
    requests: int = 0
    failed: int = 0
    replace_s: float | None = None
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _uss_pss(pid: int) -> tuple[int, int]:
    totals = smaps_rollup(pid)
    return totals.get("Private_Clean", 0) + totals.get("Private_Dirty", 0), totals.get("Pss", 0)


def snapshot(master: int) -> Snapshot:
    # Helpers that are not workers (multiprocessing's resource tracker) are left out by workers_of.
    workers = [_uss_pss(pid) for pid in workers_of(master)]
    m_uss, m_pss = _uss_pss(master)
    return Snapshot(m_uss, m_pss, [w[0] for w in workers], [w[1] for w in workers])


def settle(master: int, workers: int, timeout: float = 60.0) -> bool:
    """Until every worker is up and alike (a worker still importing the app, or just forked and not yet
    scheduled on a busy machine, is far smaller than one that has booted) and their memory has stopped moving."""
    deadline = time.monotonic() + timeout
    last: list[int] = []
    while time.monotonic() < deadline:
        now = snapshot(master).worker_uss
        alike = len(now) >= workers and min(now) > max(now) / 2
        if alike and len(last) == len(now) and all(abs(a - b) < MiB for a, b in zip(now, last, strict=True)):
            return True
        last = now
        time.sleep(0.5)
    return False


def replacement_seconds(port: int, master: int) -> float | None:
    """SIGKILL one worker; seconds until a worker that was not there before answers (fresh connections)."""
    before = set(workers_of(master))
    killed = time.monotonic()
    os.kill(min(before), signal.SIGKILL)
    while time.monotonic() < killed + 30:
        try:
            status, body = http_get(port, "/pid", timeout=2.0)
            if status == 200 and json.loads(body)["pid"] not in before:
                return time.monotonic() - killed
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    return None


def measure(variant: Variant, app: str, *, workers: int, requests: int, logs: Path) -> Row:
    target, path = APPS[app]
    port = free_port()
    args = variant.command(Launch(target, port, workers, access_log=False))
    row = Row(variant.name, app, display_command(args).replace(str(port), "PORT"))
    log = logs / f"{re.sub(r'[^a-z]+', '-', variant.name.lower()).strip('-')}.log"
    try:
        server = start_server(args, cwd=APPS_DIR, env={}, port=port, ready_path="/", log=log)
    except ServerFailed as exc:
        row.error = str(exc).splitlines()[0]
        return row
    try:
        if not settle(server.pid, workers):
            row.error = "workers did not settle within 60 s"
            return row
        row.idle = snapshot(server.pid)
        for n in range(requests):  # fresh connections: the kernel spreads them over the workers
            try:
                status, _ = http_get(port, path.format(n=n))
            except OSError:
                status = 0
            row.failed += status != 200
        row.requests = requests
        row.loaded = snapshot(server.pid)
        row.replace_s = replacement_seconds(port, server.pid)
    finally:
        server.stop()
    return row


def _mib(n: float) -> str:
    return f"{n / MiB:.1f}"


def render(rows: list[Row], conditions: str) -> str:
    lines = [
        "# Memory per worker, and replacement after SIGKILL",
        "",
        conditions,
        "",
        "USS: what the process alone holds, so what one more worker adds. PSS summed over the server's processes: "
        "its whole footprint. MiB; worker figures are the largest of the workers.",
        "",
    ]
    for app in dict.fromkeys(r.app for r in rows):
        requests = next((r.requests for r in rows if r.app == app and r.requests), 0)
        lines += [
            f"## {app} app",
            "",
            f"| server | master USS | worker USS | worker PSS | total PSS | worker USS after {requests} req "
            f"| total PSS after | replaced after SIGKILL |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in rows if r.app == app):
            if r.idle is None or r.loaded is None:
                lines.append(f"| {r.variant} | failed: {r.error} |")
                continue
            replaced = f"{r.replace_s:.2f} s" if r.replace_s is not None else "not within 30 s"
            lines.append(
                f"| {r.variant} | {_mib(r.idle.master_uss)} | {_mib(max(r.idle.worker_uss))} | "
                f"{_mib(max(r.idle.worker_pss))} | {_mib(r.idle.total_pss)} | {_mib(max(r.loaded.worker_uss))} | "
                f"{_mib(r.loaded.total_pss)} | {replaced} |"
            )
        lines.append("")
    lines += ["Commands:", ""]
    lines += [f"- {r.variant}, {r.app}: `{r.command}`" for r in rows]
    return "\n".join(lines) + "\n"


def preload_ratio(rows: list[Row], app: str) -> float | None:
    """The extra memory of a worker beyond the first with PRELOAD=on, as a fraction of it without (after load)."""
    by = {r.variant: r for r in rows if r.app == app and r.loaded is not None}
    on, off = by.get("fastlaunch PRELOAD=on"), by.get("fastlaunch")
    if on is None or off is None or on.loaded is None or off.loaded is None:
        return None
    return max(on.loaded.worker_uss) / max(off.loaded.worker_uss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--workers", type=int, default=3, help="workers of every server (default 3)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests before the second reading")
    parser.add_argument("--model-mb", type=int, default=300, help="MiB the model app allocates at import")
    parser.add_argument("--apps", default="docs,model", help="comma-separated subset of docs,model")
    parser.add_argument("--servers", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where memory.md and memory.json go")
    args = parser.parse_args(argv)
    os.environ["MODEL_MB"] = str(args.model_mb)  # inherited by every server
    variants = [VARIANTS[name] for name in args.servers.split(",") if name]
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for app in args.apps.split(","):
        for variant in variants:
            row = measure(variant, app, workers=args.workers, requests=args.requests, logs=logs / app)
            rows.append(row)
            status = row.error or f"{row.failed} failed of {row.requests}"
            print(f"{app} / {variant.name}: {status}", flush=True)
    conditions = (
        f"{args.workers} workers per server; model app {args.model_mb} MiB; {args.requests} requests "
        f"(a new connection each) between the two readings; load average {os.getloadavg()[0]:.2f} at the end."
    )
    (args.out / "memory.md").write_text(render(rows, conditions))
    (args.out / "memory.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    ratio = preload_ratio(rows, "model")
    if ratio is not None:
        print(f"model app: a worker's extra memory with PRELOAD=on is {ratio:.1%} of it without (goal <= 10 %)")
    errors = sum(1 for r in rows if r.error or r.failed)
    print(f"Report: {args.out / 'memory.md'}")
    print(f"bench.memory: {len(rows) - errors} passed, {errors} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
