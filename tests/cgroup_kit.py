"""A child memory cgroup for tests that run fastlaunch under a memory limit (MAX_WORKER_MEMORY=auto)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import remove_cgroup

MiB = 2**20
LIMIT = 300 * MiB


class MemoryGroup:
    """A child memory cgroup (v1, or v2 where the unified tree has the memory controller) of this process's."""

    def __init__(self, path: Path, v2: bool) -> None:
        self.path, self.v2 = path, v2

    def enter(self, *args: str) -> list[str]:
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *args]

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        fields = dict(line.split() for line in (self.path / name).read_text().splitlines())
        return int(fields["oom_kill"])

    def peak(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.path / name
        return int(path.read_text()) if path.exists() else None


def _own_memory_cgroup() -> tuple[Path, bool]:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/"), False
    unified = Path("/sys/fs/cgroup") / Path("/proc/self/cgroup").read_text().split("::", 1)[-1].strip().lstrip("/")
    if "memory" in (unified / "cgroup.subtree_control").read_text().split():
        return unified, True
    raise LookupError("no memory controller")


@pytest.fixture
def memory_group() -> Iterator[MemoryGroup]:
    try:
        parent, v2 = _own_memory_cgroup()
        group = parent / f"fastlaunch-memtest-{uuid.uuid4().hex[:8]}"
        group.mkdir()
    except (OSError, LookupError) as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    if v2:
        (group / "memory.max").write_text(str(LIMIT))
        (group / "memory.swap.max").write_text("0")
    else:
        (group / "memory.limit_in_bytes").write_text(str(LIMIT))
        with contextlib.suppress(OSError):  # without swap accounting there is nothing to limit
            (group / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
    try:
        yield MemoryGroup(group, v2)
    finally:
        remove_cgroup(group)
