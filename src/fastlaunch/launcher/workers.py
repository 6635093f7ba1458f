"""Where the worker count is decided.

``compute_workers`` is pure: CPUs and memory in, a plan out, with every input, its value, where it came
from, and the arithmetic. ``plan_for_this_process`` gathers the real inputs (affinity, cgroups, settings).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastlaunch.core.memory import current_rss
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.cgroups import read_limits
from fastlaunch.launcher.discover import AppTarget

MiB = 1024 * 1024
# What the master and the kernel need besides the workers, on top of the master's own RSS:
# request buffers, page cache for the app's files, a margin for RSS growth under load.
HEADROOM_FRACTION = 0.10
T = TypeVar("T")


@dataclass(frozen=True)
class Input:
    name: str
    value: str
    source: str


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A plan input and where it came from ("cgroup v2: /sys/fs/cgroup/cpu.max", "environment (MAX_WORKERS)")."""

    value: T
    source: str


@dataclass(frozen=True)
class PlanRequest:
    """Everything the plan depends on; None where there is no such limit or setting."""

    affinity_cpus: int
    cpu_quota: Sourced[float] | None = None
    memory_limit: Sourced[int] | None = None
    workers_per_core: Sourced[float] = Sourced(1.0, "default")
    max_workers: Sourced[int] | None = None
    web_concurrency: Sourced[int] | None = None
    worker_memory: Sourced[int] | None = None
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

    def with_measured_worker(self, rss: int, master_rss: int | None = None, *, measure: str = "RSS") -> WorkerPlan:
        # RSS counts the pages a worker still shares with the master: a conservative estimate. With a preloaded
        # app the master holds those pages once (in master_rss), and each worker adds its USS.
        return compute_workers(
            replace(
                self.request,
                worker_memory=Sourced(rss, f"measured ({measure} of the first worker)"),
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
        quota = r.cpu_quota.value
        inputs.append(Input("CPU quota", f"{quota:g} CPUs", r.cpu_quota.source))
        # A fractional quota still runs on whole CPUs: 1.5 CPUs of time is worth two workers' parallelism.
        cpus = max(1, min(r.affinity_cpus, math.ceil(quota)))
        steps.append(f"effective CPUs = min(affinity {r.affinity_cpus}, ceil(quota {quota:g})) = {cpus}")
    else:
        inputs.append(Input("CPU quota", "none", "no cgroup CPU limit"))
        steps.append(f"effective CPUs = affinity = {cpus}")

    per_core = r.workers_per_core.value
    inputs.append(Input("WORKERS_PER_CORE", f"{per_core:g}", r.workers_per_core.source))
    if r.max_workers is not None:
        inputs.append(Input("MAX_WORKERS", str(r.max_workers.value), r.max_workers.source))
    if r.web_concurrency is not None:
        inputs.append(Input("WEB_CONCURRENCY", str(r.web_concurrency.value), r.web_concurrency.source))
        cpu_workers = r.web_concurrency.value
        steps.append(f"WEB_CONCURRENCY is set: {cpu_workers} workers (the CPU formula is skipped)")
    else:
        cpu_workers = max(int(per_core * cpus), 2)
        steps.append(f"CPU formula = max(int({per_core:g} x {cpus}), 2) = {cpu_workers}")
        if r.max_workers is not None and r.max_workers.value < cpu_workers:
            cap = r.max_workers.value
            steps.append(f"capped by MAX_WORKERS: min({cpu_workers}, {cap}) = {cap}")
            cpu_workers = cap

    workers = cpu_workers
    if r.memory_limit is not None:
        limit = r.memory_limit.value
        inputs.append(Input("memory limit", _mib(limit), r.memory_limit.source))
        inputs.append(Input("master memory", _mib(r.master_memory), "measured (RSS of the master)"))
        if r.worker_memory is None:
            inputs.append(Input("worker memory", "unknown", "measured when the first worker has booted"))
            steps.append("memory cap: waits for the first worker's measured RSS")
        else:
            worker = r.worker_memory.value
            inputs.append(Input("worker memory", _mib(worker), r.worker_memory.source))
            usable = limit - r.master_memory - int(limit * HEADROOM_FRACTION)
            fit = max(0, usable // worker)
            steps.append(
                f"memory fit = floor(({_mib(limit)} - master {_mib(r.master_memory)} - "
                f"{HEADROOM_FRACTION:.0%} headroom) / {_mib(worker)}) = {fit}"
            )
            if fit < workers:
                workers = max(1, fit)
                steps.append(f"capped by memory: min({cpu_workers}, {fit}) -> {workers}")
                if r.web_concurrency is not None:
                    warnings.append(
                        f"WEB_CONCURRENCY={r.web_concurrency.value} does not fit in {_mib(limit)}; starting {workers}. "
                        "Raise the memory limit, or set WORKER_MEMORY if the measurement is off."
                    )
            if fit == 0:
                warnings.append(
                    f"even one worker ({_mib(worker)}) may not fit in {_mib(limit)}; "
                    "expect the out-of-memory killer. Raise the memory limit."
                )
    else:
        inputs.append(Input("memory limit", "none", "no cgroup memory limit"))
    steps.append(f"workers = {workers}")
    return WorkerPlan(
        r, cpus=cpus, cpu_workers=cpu_workers, workers=workers, inputs=inputs, steps=steps, warnings=warnings
    )


def plan_for_this_process(settings: Settings, *, cgroup_root: Path = Path("/")) -> WorkerPlan:
    limits = read_limits(cgroup_root)

    def setting(name: str) -> Sourced[Any] | None:
        value = getattr(settings, name)
        return None if value is None else Sourced(value, settings.source(name).describe())

    return compute_workers(
        PlanRequest(
            affinity_cpus=len(os.sched_getaffinity(0)),
            cpu_quota=Sourced(float(limits.cpu.value), f"cgroup {limits.layout}: {limits.cpu.source}")
            if limits.cpu
            else None,
            memory_limit=Sourced(int(limits.memory.value), f"cgroup {limits.layout}: {limits.memory.source}")
            if limits.memory
            else None,
            workers_per_core=Sourced(settings.workers_per_core, settings.source("workers_per_core").describe()),
            max_workers=setting("max_workers"),
            web_concurrency=setting("workers"),
            worker_memory=setting("worker_memory"),
            master_memory=current_rss() or 30 * MiB,
        )
    )


def measure_worker_rss(target: AppTarget) -> int | None:
    """RSS of a fresh interpreter that has imported the app and the worker class: what one worker costs before
    traffic. The app is imported in a child (this module's ``__main__``), never in this process."""
    attr = target.import_string.partition(":")[2]  # main:create_app(): the factory is called, as in a worker
    args = [sys.executable, "-P", "-m", __name__, target.module, attr, str(target.path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    out = result.stdout.strip()
    return int(out) if result.returncode == 0 and out.isdigit() else None


if __name__ == "__main__":
    from fastlaunch.worker.importer import import_app
    from fastlaunch.worker.uvicorn_worker import UvicornWorker  # noqa: F401 - part of what a worker holds

    import_app(sys.argv[1], sys.argv[2] or None, sys.argv[3])
    print(current_rss())
