from __future__ import annotations

from typing import Any

import pytest

from fastlaunch.launcher.workers import MiB, PlanRequest, Sourced, compute_workers


def given(value: float | None) -> Sourced[Any] | None:
    return None if value is None else Sourced(value, "test")


def plan(
    affinity_cpus: int,
    *,
    cpu_quota: float | None = None,
    workers_per_core: float = 1.0,
    max_workers: int | None = None,
    web_concurrency: int | None = None,
) -> int:
    request = PlanRequest(
        affinity_cpus=affinity_cpus,
        cpu_quota=given(cpu_quota),
        workers_per_core=Sourced(workers_per_core, "test"),
        max_workers=given(max_workers),
        web_concurrency=given(web_concurrency),
    )
    return compute_workers(request).workers


@pytest.mark.parametrize(
    ("affinity", "quota", "per_core", "max_workers", "expected"),
    [
        (64, None, 1.0, None, 64),  # no limit: every CPU
        (64, 1.0, 1.0, None, 2),  # the image's bug: a 1-CPU pod on a 64-core node; floor of 2
        (64, 0.25, 1.0, None, 2),  # quota below one CPU rounds up to one CPU, then the floor
        (64, 1.5, 1.0, None, 2),  # fractional quota rounds up
        (64, 3.2, 1.0, None, 4),
        (2, 8.0, 1.0, None, 2),  # affinity narrower than the quota wins
        (4, None, 2.0, None, 8),
        (4, None, 0.5, None, 2),
        (8, None, 1.0, 3, 3),  # MAX_WORKERS caps
        (8, None, 1.0, 1, 1),  # MAX_WORKERS=1 after the floor: exactly one
    ],
)
def test_cpu_formula_on_effective_cpus(
    affinity: int, quota: float | None, per_core: float, max_workers: int | None, expected: int
) -> None:
    assert plan(affinity, cpu_quota=quota, workers_per_core=per_core, max_workers=max_workers) == expected


def test_web_concurrency_overrides_formula_and_max_workers() -> None:
    assert plan(64, cpu_quota=1.0, web_concurrency=5, max_workers=2) == 5


def test_memory_cap_uses_worker_memory() -> None:
    p = compute_workers(
        PlanRequest(
            affinity_cpus=8,
            memory_limit=Sourced(512 * MiB, "test"),
            worker_memory=Sourced(100 * MiB, "test"),
            master_memory=30 * MiB,
        )
    )
    # (512 - 30 - 51) / 100 = 4.31 -> 4, below the 8 the CPUs allow
    assert p.workers == 4 and p.cpu_workers == 8
    assert any("capped by memory" in s for s in p.steps)


def test_memory_too_small_for_two_gives_one_worker() -> None:
    p = compute_workers(
        PlanRequest(
            affinity_cpus=4,
            memory_limit=Sourced(160 * MiB, "test"),
            worker_memory=Sourced(90 * MiB, "test"),
            master_memory=30 * MiB,
        )
    )
    assert p.workers == 1


def test_memory_too_small_for_one_warns() -> None:
    p = compute_workers(
        PlanRequest(affinity_cpus=2, memory_limit=Sourced(64 * MiB, "test"), worker_memory=Sourced(90 * MiB, "test"))
    )
    assert p.workers == 1
    assert any("may not fit" in w for w in p.warnings)


def test_memory_cap_applies_to_web_concurrency_with_a_warning() -> None:
    p = compute_workers(
        PlanRequest(
            affinity_cpus=2,
            web_concurrency=Sourced(6, "test"),
            memory_limit=Sourced(256 * MiB, "test"),
            worker_memory=Sourced(60 * MiB, "test"),
            master_memory=30 * MiB,
        )
    )
    assert p.workers == 3
    assert any("WEB_CONCURRENCY=6 does not fit" in w for w in p.warnings)


def test_unknown_worker_memory_waits_for_measurement() -> None:
    p = compute_workers(PlanRequest(affinity_cpus=4, memory_limit=Sourced(200 * MiB, "test")))
    assert p.needs_measurement and p.workers == 4
    measured = p.with_measured_worker(70 * MiB)
    assert not measured.needs_measurement
    assert measured.workers == 2  # (200 - 30 - 20) / 70
    assert any(i.source.startswith("measured") for i in measured.inputs if i.name == "worker memory")


def test_plan_explains_every_input_with_its_source() -> None:
    p = compute_workers(
        PlanRequest(
            affinity_cpus=64,
            cpu_quota=Sourced(1.0, "cgroup v2: /sys/fs/cgroup/cpu.max"),
            workers_per_core=Sourced(1.0, "environment (WORKERS_PER_CORE)"),
        )
    )
    names = {i.name: i for i in p.inputs}
    assert names["CPU quota"].source == "cgroup v2: /sys/fs/cgroup/cpu.max"
    assert names["WORKERS_PER_CORE"].source == "environment (WORKERS_PER_CORE)"
    assert p.steps[0] == "effective CPUs = min(affinity 64, ceil(quota 1)) = 1"
    assert p.steps[-1] == "workers = 2"
