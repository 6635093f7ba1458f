"""Where the worker count is decided.

``compute_workers`` is pure: CPUs and memory in, a plan out, with every input, its value, where it came
from, and the arithmetic. ``plan_for_this_process`` gathers the real inputs (affinity, cgroups, settings).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from fastlaunch.cgroups import read_limits
from fastlaunch.settings import Settings

MiB = 1024 * 1024
# What the master and the kernel need besides the workers, on top of the master's own RSS:
# request buffers, page cache for the app's files, a margin for RSS growth under load.
HEADROOM_FRACTION = 0.10


@dataclass(frozen=True)
class Input:
    name: str
    value: str
    source: str


@dataclass(frozen=True)
class PlanRequest:
    """Everything the plan depends on, each value with where it came from."""

    affinity_cpus: int
    cpu_quota: float | None = None
    cpu_quota_source: str = ""
    memory_limit: int | None = None
    memory_limit_source: str = ""
    workers_per_core: float = 1.0
    workers_per_core_source: str = "default"
    max_workers: int | None = None
    max_workers_source: str = ""
    web_concurrency: int | None = None
    web_concurrency_source: str = ""
    worker_memory: int | None = None
    worker_memory_source: str = ""
    master_memory: int = 30 * MiB


@dataclass(frozen=True)
class WorkerPlan:
    request: PlanRequest
    cpus: int
    cpu_workers: int  # what the CPU formula (or WEB_CONCURRENCY) asks for
    workers: int  # what will run
    inputs: list[Input] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def needs_measurement(self) -> bool:
        """True when a memory limit is known but per-worker memory is not: the first worker measures it."""
        return self.request.memory_limit is not None and self.request.worker_memory is None

    def with_measured_worker(self, rss: int, master_rss: int | None = None) -> WorkerPlan:
        # RSS counts the pages a worker still shares with the master: a conservative estimate.
        return compute_workers(
            replace(
                self.request,
                worker_memory=rss,
                worker_memory_source="measured (RSS of the first worker)",
                master_memory=master_rss or self.request.master_memory,
            )
        )


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB"


def compute_workers(r: PlanRequest) -> WorkerPlan:
    inputs = [Input("CPU affinity", f"{r.affinity_cpus} CPUs", "sched_getaffinity")]
    steps: list[str] = []
    warnings: list[str] = []

    cpus = r.affinity_cpus
    if r.cpu_quota is not None:
        inputs.append(Input("CPU quota", f"{r.cpu_quota:g} CPUs", r.cpu_quota_source))
        # A fractional quota still runs on whole CPUs: 1.5 CPUs of time is worth two workers' parallelism.
        cpus = max(1, min(r.affinity_cpus, math.ceil(r.cpu_quota)))
        steps.append(f"effective CPUs = min(affinity {r.affinity_cpus}, ceil(quota {r.cpu_quota:g})) = {cpus}")
    else:
        inputs.append(Input("CPU quota", "none", "no cgroup CPU limit"))
        steps.append(f"effective CPUs = affinity = {cpus}")

    inputs.append(Input("WORKERS_PER_CORE", f"{r.workers_per_core:g}", r.workers_per_core_source))
    if r.max_workers is not None:
        inputs.append(Input("MAX_WORKERS", str(r.max_workers), r.max_workers_source))
    if r.web_concurrency is not None:
        inputs.append(Input("WEB_CONCURRENCY", str(r.web_concurrency), r.web_concurrency_source))
        cpu_workers = r.web_concurrency
        steps.append(f"WEB_CONCURRENCY is set: {cpu_workers} workers (the CPU formula is skipped)")
    else:
        cpu_workers = max(int(r.workers_per_core * cpus), 2)
        steps.append(f"CPU formula = max(int({r.workers_per_core:g} x {cpus}), 2) = {cpu_workers}")
        if r.max_workers is not None and r.max_workers < cpu_workers:
            steps.append(f"capped by MAX_WORKERS: min({cpu_workers}, {r.max_workers}) = {r.max_workers}")
            cpu_workers = r.max_workers

    workers = cpu_workers
    if r.memory_limit is not None:
        limit = r.memory_limit
        inputs.append(Input("memory limit", _mib(limit), r.memory_limit_source))
        inputs.append(Input("master memory", _mib(r.master_memory), "measured (RSS of the master)"))
        if r.worker_memory is None:
            inputs.append(Input("worker memory", "unknown", "measured when the first worker has booted"))
            steps.append("memory cap: waits for the first worker's measured RSS")
        else:
            inputs.append(Input("worker memory", _mib(r.worker_memory), r.worker_memory_source))
            usable = limit - r.master_memory - int(limit * HEADROOM_FRACTION)
            fit = max(0, usable // r.worker_memory)
            steps.append(
                f"memory fit = floor(({_mib(limit)} - master {_mib(r.master_memory)} - "
                f"{HEADROOM_FRACTION:.0%} headroom) / {_mib(r.worker_memory)}) = {fit}"
            )
            if fit < workers:
                workers = max(1, fit)
                steps.append(f"capped by memory: min({cpu_workers}, {fit}) -> {workers}")
                if r.web_concurrency is not None:
                    warnings.append(
                        f"WEB_CONCURRENCY={r.web_concurrency} does not fit in {_mib(limit)}; starting {workers}. "
                        "Raise the memory limit, or set WORKER_MEMORY if the measurement is off."
                    )
            if fit == 0:
                warnings.append(
                    f"even one worker ({_mib(r.worker_memory)}) may not fit in {_mib(limit)}; "
                    "expect the out-of-memory killer. Raise the memory limit."
                )
    else:
        inputs.append(Input("memory limit", "none", "no cgroup memory limit"))
    steps.append(f"workers = {workers}")
    return WorkerPlan(
        r, cpus=cpus, cpu_workers=cpu_workers, workers=workers, inputs=inputs, steps=steps, warnings=warnings
    )


def current_rss(pid: int | str = "self") -> int:
    """Resident set size in bytes, from /proc (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def plan_for_this_process(settings: Settings, *, cgroup_root: Path = Path("/")) -> WorkerPlan:
    limits = read_limits(cgroup_root)

    def where(name: str) -> str:
        return settings.source(name).describe()

    return compute_workers(
        PlanRequest(
            affinity_cpus=len(os.sched_getaffinity(0)),
            cpu_quota=float(limits.cpu.value) if limits.cpu else None,
            cpu_quota_source=f"cgroup {limits.layout}: {limits.cpu.source}" if limits.cpu else "",
            memory_limit=int(limits.memory.value) if limits.memory else None,
            memory_limit_source=f"cgroup {limits.layout}: {limits.memory.source}" if limits.memory else "",
            workers_per_core=settings.workers_per_core,
            workers_per_core_source=where("workers_per_core"),
            max_workers=settings.max_workers,
            max_workers_source=where("max_workers"),
            web_concurrency=settings.workers,
            web_concurrency_source=where("workers"),
            worker_memory=settings.worker_memory,
            worker_memory_source=where("worker_memory"),
            master_memory=current_rss() or 30 * MiB,
        )
    )
