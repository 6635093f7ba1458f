"""Fake cgroup trees: what a process sees in /proc/self and /sys/fs/cgroup on each kind of host."""

from __future__ import annotations

import math
import os
from pathlib import Path

from fastlaunch.core.memory import current_rss
from fastlaunch.core.settings import load_settings
from fastlaunch.launcher.cgroups import read_limits
from fastlaunch.launcher.workers import HEADROOM_FRACTION, Sourced, WorkerPlan, plan_for_this_process

V2_MOUNT = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"


def v1_mount(controllers: str, root: str = "/") -> str:
    return f"40 25 0:3{len(controllers)} {root} /sys/fs/cgroup/{controllers} rw - cgroup cgroup rw,{controllers}\n"


def make(tmp: Path, mountinfo: str, cgroup: str, files: dict[str, str]) -> Path:
    (tmp / "proc/self").mkdir(parents=True)
    (tmp / "proc/self/mountinfo").write_text(mountinfo)
    (tmp / "proc/self/cgroup").write_text(cgroup)
    for rel, content in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp


def test_v2_container_with_its_own_namespace(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        V2_MOUNT,
        "0::/\n",
        {
            "sys/fs/cgroup/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/memory.max": "268435456\n",
        },
    )
    limits = read_limits(root)
    assert limits.layout == "v2"
    assert limits.cpu is not None and limits.cpu.value == 1.5 and limits.cpu.source == "/sys/fs/cgroup/cpu.max"
    assert limits.memory is not None and limits.memory.value == 256 * 2**20


def test_v2_no_limits(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        V2_MOUNT,
        "0::/user.slice\n",
        {
            "sys/fs/cgroup/user.slice/cpu.max": "max 100000\n",
            "sys/fs/cgroup/user.slice/memory.max": "max\n",
        },
    )
    limits = read_limits(root)
    assert limits.cpu is None and limits.memory is None and limits.layout == "v2"


def test_v2_parent_limit_applies_to_child(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        V2_MOUNT,
        "0::/kubepods/pod1/ctr\n",
        {
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "50000 100000\n",
            "sys/fs/cgroup/kubepods/pod1/memory.max": "134217728\n",
            "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n",
            "sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "536870912\n",
        },
    )
    limits = read_limits(root)
    assert limits.cpu is not None and limits.cpu.value == 0.5
    assert limits.cpu.source == "/sys/fs/cgroup/kubepods/pod1/cpu.max"
    assert limits.memory is not None and limits.memory.value == 128 * 2**20


def test_v1_docker_without_cgroup_namespace(tmp_path: Path) -> None:
    # The process sees the host's path, but the mount's root is that same cgroup.
    mountinfo = v1_mount("cpu,cpuacct", "/docker/abc") + v1_mount("memory", "/docker/abc")
    cgroup = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n"
    root = make(
        tmp_path,
        mountinfo,
        cgroup,
        {
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "200000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
        },
    )
    limits = read_limits(root)
    assert limits.layout == "v1"
    assert limits.cpu is not None and limits.cpu.value == 2.0
    assert limits.memory is not None and limits.memory.value == 2**30
    assert limits.memory.source == "/sys/fs/cgroup/memory/memory.limit_in_bytes"


def test_v1_unlimited_values(tmp_path: Path) -> None:
    mountinfo = v1_mount("cpu,cpuacct") + v1_mount("memory")
    root = make(
        tmp_path,
        mountinfo,
        "5:cpu,cpuacct:/\n4:memory:/\n",
        {
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    limits = read_limits(root)
    assert limits.cpu is None and limits.memory is None


def test_hybrid_host_reads_v1_controllers_not_the_empty_unified_tree(tmp_path: Path) -> None:
    mountinfo = (
        v1_mount("cpu,cpuacct") + v1_mount("memory") + "35 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    cgroup = "5:cpu,cpuacct:/job\n4:memory:/job\n0::/job\n"
    root = make(
        tmp_path,
        mountinfo,
        cgroup,
        {
            "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us": "50000\n",
            "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/job/memory.limit_in_bytes": "209715200\n",
            "sys/fs/cgroup/unified/job/cgroup.procs": "1\n",
        },
    )
    limits = read_limits(root)
    assert limits.layout == "hybrid"
    assert limits.cpu is not None and limits.cpu.value == 0.5
    assert limits.memory is not None and limits.memory.value == 200 * 2**20


def test_hybrid_with_memory_only_in_v2(tmp_path: Path) -> None:
    mountinfo = v1_mount("cpu,cpuacct") + V2_MOUNT.replace("/sys/fs/cgroup ", "/sys/fs/cgroup/unified ")
    root = make(
        tmp_path,
        mountinfo,
        "5:cpu,cpuacct:/\n0::/app\n",
        {
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/unified/app/memory.max": "104857600\n",
        },
    )
    limits = read_limits(root)
    assert limits.cpu is None
    assert limits.memory is not None and limits.memory.value == 100 * 2**20


def test_no_cgroups_at_all(tmp_path: Path) -> None:
    limits = read_limits(tmp_path)
    assert (limits.cpu, limits.memory, limits.layout) == (None, None, "none")


# Through the real entry point: the fake tree's limits, this process's real CPU affinity and RSS.


def plan_in(tmp: Path, files: dict[str, str], environ: dict[str, str] | None = None) -> WorkerPlan:
    root = make(tmp / "root", V2_MOUNT, "0::/\n", files)
    settings = load_settings(environ=environ or {}, project_dir=tmp)
    return plan_for_this_process(settings, cgroup_root=root)


def test_half_a_cpu_quota_runs_on_one_cpu_with_the_floor_of_two_workers(tmp_path: Path) -> None:
    plan = plan_in(tmp_path, {"sys/fs/cgroup/cpu.max": "50000 100000\n"})
    assert plan.request.cpu_quota == Sourced(0.5, "cgroup v2: /sys/fs/cgroup/cpu.max")
    assert (plan.cpus, plan.workers) == (1, 2)


def test_affinity_narrower_than_the_quota_wins(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    quota = affinity + 4  # more CPUs than this process may run on
    plan = plan_in(tmp_path, {"sys/fs/cgroup/cpu.max": f"{quota * 100000} 100000\n"})
    assert plan.request.cpu_quota is not None and plan.request.cpu_quota.value == quota
    assert plan.cpus == affinity
    assert plan.workers == max(affinity, 2)
    assert f"min(affinity {affinity}, ceil(quota {quota}))" in plan.steps[0]


def memory_for(workers: float, worker_memory: int) -> int:
    """A memory limit in which the master (this process's RSS) and ``workers`` workers fit, after headroom."""
    return math.ceil((current_rss() + workers * worker_memory) / (1 - HEADROOM_FRACTION))


def test_memory_too_small_for_two_workers_gives_one(tmp_path: Path) -> None:
    # Room for 1.5 workers of 1 GiB: half a GiB of slack either way for this process's RSS to move.
    limit = memory_for(1.5, 2**30)
    plan = plan_in(tmp_path, {"sys/fs/cgroup/memory.max": f"{limit}\n"}, {"WORKER_MEMORY": "1G"})
    assert plan.request.memory_limit == Sourced(limit, "cgroup v2: /sys/fs/cgroup/memory.max")
    assert plan.cpu_workers >= 2 and plan.workers == 1
    assert any(step.startswith("capped by memory") for step in plan.steps)


def test_memory_too_small_for_one_worker_warns(tmp_path: Path) -> None:
    limit = memory_for(0.5, 2**30)
    plan = plan_in(tmp_path, {"sys/fs/cgroup/memory.max": f"{limit}\n"}, {"WORKER_MEMORY": "1G"})
    assert plan.workers == 1
    assert any("even one worker (1024 MiB) may not fit" in w for w in plan.warnings)
