"""One round of measurement: start the servers of one app, time their startups, load each endpoint in
alternating slices, read their memory."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import example
from bench.plan import Config
from bench.procs import HOST, Server, ServerFailed, start_server
from bench.servers import SERVERS, Launch
from bench.wrk import WrkError, WrkResult, run_wrk


@dataclass(frozen=True)
class Load:
    duration_s: int
    warmup_s: int
    connections: int
    workers: int
    wrk_cpu: int | None


@dataclass
class Sample:
    key: str
    rep: int
    command: list[str]
    startup_s: float = 0.0
    master_rss: int = 0
    worker_rss: list[int] = field(default_factory=list)
    results: dict[str, WrkResult] = field(default_factory=dict)
    # Server CPU time (master + workers) per request, in µs: steadier than req/s on a shared machine.
    cpu_us: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rep": self.rep,
            "command": self.command,
            "startup_s": self.startup_s,
            "master_rss": self.master_rss,
            "worker_rss": self.worker_rss,
            "results": {path: result.to_json() for path, result in self.results.items()},
            "cpu_us": self.cpu_us,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        results = {path: WrkResult.from_json(value) for path, value in data["results"].items()}
        return cls(**{**data, "results": results})


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def command_for(config: Config, port: int, workers: int) -> list[str]:
    return SERVERS[config.server].command(Launch(config.app.app, port, workers, config.access_log))


def combine(slices: list[WrkResult]) -> WrkResult:
    """One result from several wrk slices: counts add up; percentiles are the slices' medians."""

    def median(values: list[int]) -> int:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    requests = sum(r.requests for r in slices)
    return WrkResult(
        requests=requests,
        duration_us=sum(r.duration_us for r in slices),
        connect=sum(r.connect for r in slices),
        read=sum(r.read for r in slices),
        write=sum(r.write for r in slices),
        status=sum(r.status for r in slices),
        timeout=sum(r.timeout for r in slices),
        p50_us=median([r.p50_us for r in slices]),
        p90_us=median([r.p90_us for r in slices]),
        p99_us=median([r.p99_us for r in slices]),
        max_us=max(r.max_us for r in slices),
        mean_us=sum(r.mean_us * r.requests for r in slices) / requests if requests else 0.0,
    )


@dataclass
class _Live:
    config: Config
    sample: Sample
    server: Server
    port: int
    log: Path
    slices: dict[str, list[WrkResult]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)


def measure_group(configs: list[Config], rep: int, load: Load, logs: Path) -> list[Sample]:
    """Starts every configuration of one app side by side, then loads each endpoint in one-second slices that
    alternate between the servers (A B C, C B A, ...). This machine's speed drifts by tens of per cent over
    minutes (a shared VM); alternating second by second puts every server under the same drift, and each
    slice's fresh connections even out how the accept queue splits them between the workers. Idle servers
    wait in epoll, so they do not load the one being measured."""
    live: list[_Live] = []
    samples: list[Sample] = []
    with ExitStack() as stack:
        for config in configs:
            port = free_port()
            args = command_for(config, port, load.workers)
            sample = Sample(config.key, rep, args)
            samples.append(sample)
            log = logs / f"{config.key.replace('/', '-')}-{rep}.log"
            try:
                server = start_server(
                    args, cwd=config.app.cwd, env=config.app.env, port=port, ready_path=config.app.ready_path, log=log
                )
            except ServerFailed as exc:
                sample.error = f"server failed: {exc}"
                continue
            stack.callback(server.stop)
            sample.startup_s = server.startup_s
            # Settled before the next one starts, so that startup is timed on an otherwise idle machine.
            if not server.settle(load.workers):
                sample.error = f"the server did not settle with {load.workers} idle workers within 30 s"
                continue
            live.append(_Live(config, sample, server, port, log))
        values: dict[str, str] = {}
        if live and live[0].config.app.seeded:
            try:
                # The servers share one database, seeded before any of them started (seed_in_process): this
                # lists it for the endpoints' placeholders, one GET, and writes nothing.
                values = example.seed(live[0].port, example.load_config())
            except (example.ExampleUnavailable, OSError) as exc:
                for entry in live:
                    entry.sample.error = f"{type(exc).__name__}: {exc}"
        for endpoint in dict.fromkeys(e for c in configs for e in c.endpoints):
            path = example.expand(endpoint, values)
            runners = [entry for entry in live if endpoint in entry.config.endpoints]
            if load.warmup_s:
                for entry in runners:
                    if entry.sample.error is None:
                        _slice(entry, endpoint, path, load, load.warmup_s, keep=False)
            for n in range(load.duration_s):
                for entry in runners if n % 2 == 0 else runners[::-1]:
                    if entry.sample.error is None:
                        _slice(entry, endpoint, path, load, 1, keep=True)
        for entry in live:
            if entry.sample.error is None:
                for endpoint, slices in entry.slices.items():
                    result = entry.sample.results[endpoint] = combine(slices)
                    if result.requests:
                        entry.sample.cpu_us[endpoint] = entry.cpu_s[endpoint] / result.requests * 1e6
                entry.sample.master_rss, entry.sample.worker_rss = entry.server.memory()
            else:
                entry.sample.error += f"\n{entry.server.log_tail()}"
    for entry in live:
        if entry.sample.error is None:
            entry.log.unlink(missing_ok=True)  # access logs grow large; a failed run keeps its log
    return samples


def _slice(entry: _Live, endpoint: str, path: str, load: Load, seconds: int, *, keep: bool) -> None:
    try:
        cpu_before = entry.server.cpu_seconds()
        result = run_wrk(entry.port, path, duration_s=seconds, connections=load.connections, cpu=load.wrk_cpu)
        cpu = entry.server.cpu_seconds() - cpu_before
    except (WrkError, OSError) as exc:
        entry.sample.error = f"{type(exc).__name__}: {exc}"
        return
    if keep:
        entry.slices.setdefault(endpoint, []).append(result)
        entry.cpu_s[endpoint] = entry.cpu_s.get(endpoint, 0.0) + cpu
