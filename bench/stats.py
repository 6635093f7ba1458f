"""Aggregates the repetitions of each configuration: medians with min-max."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from bench.measure import Sample


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(median(values), min(values), max(values))


@dataclass(frozen=True)
class EndpointStats:
    rps: Spread
    p50_ms: float
    p99_ms: float
    cpu_us: float | None  # server CPU per request
    socket_errors: int
    non_2xx: int
    # Responses under 400 per second: a 503 a guard answered at once is no request served (wrk counts it).
    served_rps: float | None = None


@dataclass(frozen=True)
class ConfigStats:
    key: str
    runs: int
    failed_runs: int
    startup_s: Spread | None
    master_mib: float | None
    worker_mib: float | None
    workers: int
    endpoints: dict[str, EndpointStats]


def summarize(key: str, samples: list[Sample]) -> ConfigStats:
    good = [s for s in samples if s.error is None]
    endpoints: dict[str, EndpointStats] = {}
    for path in good[0].results if good else []:
        results = [s.results[path] for s in good if path in s.results]
        endpoints[path] = EndpointStats(
            rps=Spread.of([r.rps for r in results]),
            p50_ms=median(r.p50_us for r in results) / 1000,
            p99_ms=median(r.p99_us for r in results) / 1000,
            cpu_us=median(cpu) if (cpu := [s.cpu_us[path] for s in good if path in s.cpu_us]) else None,
            socket_errors=sum(r.socket_errors for r in results),
            non_2xx=sum(r.status for r in results),
            served_rps=median(r.rps * (1 - r.status / r.requests) if r.requests else 0.0 for r in results),
        )
    worker_means = [sum(s.worker_rss) / len(s.worker_rss) for s in good if s.worker_rss]
    return ConfigStats(
        key=key,
        runs=len(samples),
        failed_runs=len(samples) - len(good),
        startup_s=Spread.of([s.startup_s for s in good]) if good else None,
        master_mib=median(s.master_rss for s in good) / 2**20 if good else None,
        worker_mib=median(worker_means) / 2**20 if worker_means else None,
        workers=max((len(s.worker_rss) for s in good), default=0),
        endpoints=endpoints,
    )


def summarize_all(samples: list[Sample]) -> dict[str, ConfigStats]:
    keys = list(dict.fromkeys(s.key for s in samples))
    return {key: summarize(key, [s for s in samples if s.key == key]) for key in keys}


def rps(stats: dict[str, ConfigStats], key: str, path: str) -> float | None:
    config = stats.get(key)
    if config is None or path not in config.endpoints:
        return None
    return config.endpoints[path].rps.median


def served_rps(stats: dict[str, ConfigStats], key: str, path: str) -> float | None:
    """The median rate of responses under 400 (the request rate where that was not recorded)."""
    config = stats.get(key)
    if config is None or path not in config.endpoints:
        return None
    endpoint = config.endpoints[path]
    return endpoint.served_rps if endpoint.served_rps is not None else endpoint.rps.median
