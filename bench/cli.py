"""``python -m bench``: runs the comparison, writes the report and plots, prints the judged ratios."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import coldstart_results, example, instructions, machine, postgres
from bench.bytecode import compile_checkout
from bench.coldstart_results import ColdStart
from bench.judge import instruction_verdicts, overload_verdicts, verdicts
from bench.measure import Load, Sample, command_for, measure_group
from bench.plan import AppSpec, Config, configurations, rounds
from bench.reliability import RELIABILITY_SERVERS, SCENARIOS, Reliability, run_reliability
from bench.report import Run, render, verdict_lines
from bench.servers import PEERS, SERVERS, display_command
from bench.stats import summarize_all
from bench.wrk import wrk_path

RESULTS = Path(__file__).with_name("results")
SMOKE_SERVERS = "fastlaunch,gunicorn,granian"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds: 1 s loads, 1 repetition, 3 servers")
    parser.add_argument(
        "--duration", type=int, help="one-second wrk slices per endpoint and server (default 10; smoke 1)"
    )
    parser.add_argument("--warmup", type=int, help="seconds of discarded warm-up per endpoint (default 2; smoke 0)")
    parser.add_argument("--repetitions", type=int, help="interleaved repetitions (default 3; smoke 1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server (default 2)")
    parser.add_argument("--servers", help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument("--databases", help="example databases: sqlite,postgresql (default both; smoke sqlite)")
    parser.add_argument("--no-example", action="store_true", help="skip the example service")
    parser.add_argument("--no-reliability", action="store_true", help="skip the SIGHUP/SIGTERM/SIGKILL runs")
    parser.add_argument("--no-overload", action="store_true", help="skip the open-loop overload scenario")
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="skip building the images for their cold start (judged from bench/results/coldstart.json if there)",
    )
    parser.add_argument(
        "--no-instructions",
        action="store_true",
        help="skip counting instructions per request under callgrind (judged from bench/results/instructions.json)",
    )
    parser.add_argument("--cold-starts", type=int, default=5, help="starts per image for the cold start (default 5)")
    parser.add_argument("--wrk-cpu", type=int, help="CPU wrk is pinned to (default: the last one; -1: not pinned)")
    parser.add_argument(
        "--out", type=Path, help="output directory (default bench/results; smoke bench/results/raw/smoke)"
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (1 if smoke else 10)
    args.warmup = args.warmup if args.warmup is not None else (0 if smoke else 2)
    args.repetitions = args.repetitions or (1 if smoke else 3)
    args.servers = [s for s in (args.servers or (SMOKE_SERVERS if smoke else ",".join(SERVERS))).split(",") if s]
    args.databases = [d for d in (args.databases or ("sqlite" if smoke else "sqlite,postgresql")).split(",") if d]
    args.out = args.out or (RESULTS / "raw" / "smoke" if smoke else RESULTS)
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if args.wrk_cpu is None:
        args.wrk_cpu = max(os.sched_getaffinity(0))
    return args


def example_apps(args: argparse.Namespace, stack: ExitStack, work: Path, skipped: list[str]) -> list[AppSpec]:
    """The example on each database that can be had here; the rest is skipped with its reason."""
    if args.no_example:
        skipped.append("example service: --no-example")
        return []
    config = example.load_config()
    try:
        app = example.resolve_app(config)
    except example.ExampleUnavailable as exc:
        skipped.append(f"example service: {exc}")
        return []
    specs = []
    for database in args.databases:
        values = {"workdir": str(work)}
        if database == "postgresql":
            try:
                cluster = stack.enter_context(postgres.cluster())
            except postgres.PostgresUnavailable as exc:
                skipped.append(f"example on PostgreSQL: {exc}")
                continue
            values |= {"port": str(cluster.port), "user": cluster.user, "database": cluster.database}
        url = example.expand(config.databases[database], values)
        env = {config.database_env: url, **config.env}
        try:
            example.prepare(config, {**os.environ, **env}, work / f"prepare-{database}.log")
            example.seed_in_process(config, app, config.dir, env)
        except (example.ExampleUnavailable, OSError) as exc:
            skipped.append(f"example on {database}: {exc}")
            continue
        specs.append(
            AppSpec(
                f"example-{database}",
                f"example service on {database}",
                app,
                config.dir,
                tuple(config.endpoints),
                config.ready_path,
                env,
                seeded=True,
            )  # fmt: skip
        )
    return specs


def conditions(args: argparse.Namespace, load_before: str) -> dict[str, str]:
    return {
        "load": f"wrk -t1 -c{args.connections} --latency, {args.duration} one-second slices per endpoint and server, "
        f"after a discarded {args.warmup} s warm-up on the same endpoint",
        "order": f"{args.repetitions} repetition(s); in each, the servers of one app run side by side (each started "
        "afresh) and the slices alternate between them, A B C then C B A, so the machine's drift hits all alike",
        "workers": f"{args.workers} per server",
        "CPU placement": (
            f"servers unpinned on all {len(os.sched_getaffinity(0))} CPUs; wrk (one thread) pinned to CPU "
            f"{args.wrk_cpu}, so it shares that CPU with the workers, as a co-located proxy would"
            if args.wrk_cpu >= 0
            else "nothing pinned"
        ),
        "machine load": f"load average before the run: {load_before}; after: {machine.load_average()}",
    }


def run_bench(args: argparse.Namespace) -> int:
    if wrk_path() is None:
        print("wrk is not installed: apt-get install wrk (scripts/install-system-deps installs it).", file=sys.stderr)
        return 2
    compile_checkout()
    load_before = machine.load_average()
    if os.getloadavg()[0] > 1.0 and not args.smoke:
        print(f"warning: the machine is busy (load average {load_before}); the figures will be noisy.", flush=True)
    out: Path = args.out
    logs = out / "raw" / "logs" if out == RESULTS else out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    load = Load(args.duration, args.warmup, args.connections, args.workers, None if args.wrk_cpu < 0 else args.wrk_cpu)
    skipped: list[str] = []
    samples: list[Sample] = []
    reliability: list[Reliability] = []
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="fastlaunch-bench-"))
        stack.callback(shutil.rmtree, work, True)
        examples = example_apps(args, stack, work, skipped)
        access_runs = ["fastlaunch"] if args.smoke else ["fastlaunch", *PEERS]
        configs = configurations(args.servers, examples, access_log_runs=access_runs)
        order = rounds(configs, args.repetitions)
        done, total = 0, len(configs) * args.repetitions
        for rep, group in order:
            for config, sample in zip(group, measure_group(group, rep, load, logs), strict=True):
                samples.append(sample)
                done += 1
                print(f"[{done}/{total}] {progress(config, sample)}", flush=True)
        if not args.no_reliability:
            servers = ["fastlaunch"] if args.smoke else [s for s in RELIABILITY_SERVERS if s in args.servers]
            for server in servers:
                for scenario in SCENARIOS:
                    result = run_reliability(
                        server, scenario, workers=args.workers, settle_s=0.5 if args.smoke else 2.0, logs=logs
                    )
                    reliability.append(result)
                    failed = result.failed_while_serving()
                    print(f"reliability {server} {scenario}: {result.ok} ok, {failed} failed", flush=True)
    if not args.no_overload:
        from bench.overload import failures, run_count, run_overload

        databases = [d for d in args.databases if d == "postgresql"] or args.databases[:1]  # one: the pool's
        databases = [] if args.no_example else databases
        overload = run_overload(smoke=args.smoke, workers=args.workers, out=out, logs=logs, databases=databases)
        errors_overload = failures(overload)
        overload_runs = run_count(overload)
        skipped += [f"overload {reason}" for reason in overload["skipped"]]
        overload_judged = overload_verdicts(overload)
        print(f"Overload report: {out / 'overload.md'}", flush=True)
    else:
        errors_overload, overload_runs, overload_judged = [], 0, []
    cold = cold_starts(args, skipped)
    stats = summarize_all(samples)
    judged = verdicts(stats, [(spec.name, f"{spec.label}, migrations at head") for spec in examples], cold)
    judged += overload_judged  # beside the other ratios, in the report and the GOAL MISSED lines
    counts, source = instruction_counts(args, skipped)
    judged += instruction_verdicts({(c.app, c.stack): c.per_request for c in counts}, source)
    errors = [f"{s.key} rep {s.rep}: {s.error}" for s in samples if s.error]
    errors += [f"reliability {r.server} {r.scenario}: {r.error}" for r in reliability if r.error]
    errors += errors_overload
    # OVERLOAD=auto may shed (503) when a stall of the shared machine makes wrk's 64 connections queue past its
    # target: its non-2xx are shown in the report, not failures.
    errors += [
        f"{key} {path}: {e.non_2xx} non-2xx responses"
        for key, config_stats in stats.items()
        for path, e in config_stats.endpoints.items()
        if e.non_2xx and not key.startswith("fastlaunch-overload/")
    ]
    run = Run(
        mode="smoke run" if args.smoke else "full run",
        conditions=conditions(args, load_before),
        machine=machine.machine(),
        versions=machine.versions(),
        commands=commands(configs, args.workers),
        configs=configs,
        stats=stats,
        verdicts=judged,
        reliability=reliability,
        skipped=skipped,
        errors=errors,
        instructions=counts,
    )
    from bench.plots import plot_all  # matplotlib is slow to import; only needed here

    run.plots = plot_all(configs, stats, out)
    (out / "latest.md").write_text(render(run))
    raw = {"samples": [s.to_json() for s in samples], "reliability": [r.to_json() for r in reliability]}
    (out / "latest.json").write_text(json.dumps(raw, indent=1))
    print("\n".join(["", f"Report: {out / 'latest.md'}", "", *verdict_lines(judged), ""]))
    if args.smoke:
        print("Smoke run: 1 s loads on a shared machine; the ratios above are not judged (make bench judges them).")
    else:
        for v in judged:
            if v.met is False:
                print(f"GOAL MISSED: {v.name} = {v.value:.2f}, goal {v.goal}.")
    for line in skipped:
        print(f"skipped: {line}")
    for line in errors:
        print(f"FAILED: {line}", file=sys.stderr)
    runs = len(samples) + len(reliability) + overload_runs
    # The plain closing line CI reads: measurements (and reliability runs) that completed vs failed.
    print(f"bench: {runs - len(errors)} passed, {len(errors)} failed")
    return 1 if errors or not samples else 0


def cold_starts(args: argparse.Namespace, skipped: list[str]) -> list[ColdStart]:
    """The images' cold starts: measured in a full run (podman builds, minutes), else the last saved figures."""
    if args.smoke or args.no_images:
        saved = coldstart_results.load()
        if saved:
            skipped.append(f"image cold start: not measured in this run; figures from {coldstart_results.RESULTS}")
        else:
            skipped.append("image cold start: not measured in this run (python -m bench.coldstart measures it)")
        return saved
    from bench import coldstart  # imports the tests' podman harness

    try:
        results = coldstart.measure(["example", "single"], args.cold_starts)
    except (coldstart.ColdStartUnavailable, OSError, AssertionError, subprocess.SubprocessError) as exc:
        skipped.append(f"image cold start: {exc}")
        return []
    coldstart_results.save(results)
    return results


def instruction_counts(args: argparse.Namespace, skipped: list[str]) -> tuple[list[instructions.Count], str]:
    """Instructions per request (bench.instructions): counted in a full run (callgrind, minutes), else the last
    saved figures; with where they come from."""
    saved = f"saved in {instructions.RESULTS.name}"
    if args.smoke or args.no_instructions:
        counts = instructions.load()
        what = f"figures {saved}" if counts else "none saved (python -m bench.inprocess --instructions counts them)"
        skipped.append(f"instructions per request: not counted in this run; {what}")
        return counts, saved
    try:
        counts = instructions.measure(skipped)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        skipped.append(f"instructions per request: {exc}")
        return [], "not counted"
    instructions.save(counts)
    return counts, "counted in this run"


def progress(config: Config, sample: Sample) -> str:
    if sample.error:
        return f"{config.key} rep {sample.rep}: FAILED {sample.error.splitlines()[0]}"
    figures = ", ".join(
        f"{path} {r.rps:.0f} req/s ({sample.cpu_us.get(path, 0):.0f} µs CPU/req)" for path, r in sample.results.items()
    )
    return f"{config.key} rep {sample.rep}: started in {sample.startup_s:.2f} s; {figures}"


def commands(configs: list[Config], workers: int) -> dict[str, str]:
    shown: dict[str, str] = {}
    for config in configs:
        label = f"{config.label}, {config.app.label}"
        shown[label] = display_command(command_for(config, 8000, workers))
    return shown


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_bench(parse_args(argv)))
