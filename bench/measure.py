"""One measurement: start a configuration's server, time its startup, load each endpoint, read its memory."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import example
from bench.plan import Config
from bench.procs import HOST, ServerFailed, start_server
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


def measure(config: Config, rep: int, load: Load, logs: Path) -> Sample:
    port = free_port()
    args = command_for(config, port, load.workers)
    sample = Sample(config.key, rep, args)
    log = logs / f"{config.key.replace('/', '-')}-{rep}.log"
    try:
        server = start_server(
            args, cwd=config.app.cwd, env=config.app.env, port=port, ready_path=config.app.ready_path, log=log
        )
    except ServerFailed as exc:
        sample.error = f"server failed: {exc}"
        return sample
    sample.startup_s = server.startup_s
    try:
        if not server.settle(load.workers):
            raise OSError(f"the server did not settle with {load.workers} idle workers within 30 s")
        values = example.seed(port, example.load_config()) if config.app.seeded else {}
        for endpoint in config.endpoints:
            path = example.expand(endpoint, values)
            if load.warmup_s:
                run_wrk(port, path, duration_s=load.warmup_s, connections=load.connections, cpu=load.wrk_cpu)
            cpu_before = server.cpu_seconds()
            result = run_wrk(port, path, duration_s=load.duration_s, connections=load.connections, cpu=load.wrk_cpu)
            sample.results[endpoint] = result
            if result.requests:
                sample.cpu_us[endpoint] = (server.cpu_seconds() - cpu_before) / result.requests * 1e6
        sample.master_rss, sample.worker_rss = server.memory()
    except (WrkError, example.ExampleUnavailable, OSError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}\n{server.log_tail()}"
    finally:
        server.stop()
    if sample.error is None:
        log.unlink(missing_ok=True)  # access logs grow large; a failed run keeps its log
    return sample
