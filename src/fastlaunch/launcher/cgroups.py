"""Reads the CPU quota and memory limit that apply to this process from its cgroups (v1, v2 or a hybrid
of both), the way the kernel sees them: the process's own cgroup and every ancestor up to the mount.

Every function takes ``root`` so tests can point it at a fake tree holding ``proc/self/cgroup``,
``proc/self/mountinfo`` and the cgroup files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# cgroup v1 reports "no limit" as a huge page-aligned number rather than a word.
_V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class Limit:
    value: float | int
    source: str  # the file the value was read from, as seen from inside the process


@dataclass(frozen=True)
class CgroupLimits:
    cpu: Limit | None  # CPUs the quota allows (quota / period), may be fractional
    memory: Limit | None  # bytes
    layout: str  # "v1", "v2", "hybrid" or "none"


@dataclass(frozen=True)
class _Mount:
    point: str  # where the hierarchy is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct
    root: str  # which cgroup of the hierarchy is mounted there (not "/" inside some containers)
    version: int
    controllers: frozenset[str]


def _mounts(root: Path) -> list[_Mount]:
    try:
        text = (root / "proc/self/mountinfo").read_text()
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        version = 2 if tail[0] == "cgroup2" else 1
        controllers = frozenset(tail[2].split(",")) if version == 1 else frozenset()
        mounts.append(_Mount(point=fields[4], root=fields[3], version=version, controllers=controllers))
    return mounts


def _memberships(root: Path) -> dict[str, str]:
    """Controller (or "" for the v2 unified hierarchy) -> cgroup path, from /proc/self/cgroup."""
    try:
        text = (root / "proc/self/cgroup").read_text()
    except OSError:
        return {}
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _chain(root: Path, mount: _Mount, cgroup_path: str) -> list[Path]:
    """The process's cgroup directory and its ancestors up to the mount point, innermost first."""
    base = root / mount.point.lstrip("/")
    relative = cgroup_path
    if mount.root != "/" and (cgroup_path == mount.root or cgroup_path.startswith(mount.root + "/")):
        relative = cgroup_path[len(mount.root) :]
    leaf = base / relative.strip("/") if relative.strip("/") else base
    if not leaf.is_dir():
        # A container without its own cgroup namespace sees the host path but only its own subtree.
        leaf = base
    chain = [leaf]
    while chain[-1] != base and base in chain[-1].parents:
        chain.append(chain[-1].parent)
    return chain


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _shown(root: Path, path: Path) -> str:
    return "/" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _cpu_v2(root: Path, chain: list[Path]) -> Limit | None:
    best: Limit | None = None
    for directory in chain:
        text = _read(directory / "cpu.max")
        if not text:
            continue
        quota, _, period = text.partition(" ")
        if quota == "max":
            continue
        cpus = int(quota) / int(period or "100000")
        if best is None or cpus < best.value:
            best = Limit(cpus, _shown(root, directory / "cpu.max"))
    return best


def _cpu_v1(root: Path, chain: list[Path]) -> Limit | None:
    best: Limit | None = None
    for directory in chain:
        quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if not quota or not period or int(quota) <= 0 or int(period) <= 0:
            continue
        cpus = int(quota) / int(period)
        if best is None or cpus < best.value:
            best = Limit(cpus, _shown(root, directory / "cpu.cfs_quota_us"))
    return best


def _memory(root: Path, chain: list[Path], filename: str) -> Limit | None:
    best: Limit | None = None
    for directory in chain:
        text = _read(directory / filename)
        if not text or text == "max" or not text.isdigit() or int(text) >= _V1_UNLIMITED:
            continue
        if best is None or int(text) < best.value:
            best = Limit(int(text), _shown(root, directory / filename))
    return best


def read_limits(root: Path = Path("/")) -> CgroupLimits:
    mounts = _mounts(root)
    members = _memberships(root)
    v1 = {c: m for m in mounts if m.version == 1 for c in m.controllers}
    v2 = next((m for m in mounts if m.version == 2), None)
    v2_chain = _chain(root, v2, members.get("", "/")) if v2 else []

    cpu: Limit | None = None
    memory: Limit | None = None
    # On a hybrid host a controller lives in exactly one hierarchy: v1 when it is mounted there.
    if "cpu" in v1:
        cpu = _cpu_v1(root, _chain(root, v1["cpu"], members.get("cpu", "/")))
    elif v2_chain:
        cpu = _cpu_v2(root, v2_chain)
    if "memory" in v1:
        memory = _memory(root, _chain(root, v1["memory"], members.get("memory", "/")), "memory.limit_in_bytes")
    elif v2_chain:
        memory = _memory(root, v2_chain, "memory.max")

    layout = "none"
    if v1 and v2:
        layout = "hybrid"
    elif v1:
        layout = "v1"
    elif v2:
        layout = "v2"
    return CgroupLimits(cpu=cpu, memory=memory, layout=layout)
