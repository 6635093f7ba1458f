"""Worker sizing for a process that really runs under cgroup v1 CPU and memory limits (this host is hybrid:
v1 controllers plus an empty unified tree). The container tests cover the same under podman."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ASSETS, FASTLAUNCH, free_port, remove_cgroup, running, wait_for_workers

MiB = 2**20


def _own_cgroup(controller: str) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    raise LookupError(controller)


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A child memory cgroup (220 MiB) and cpu cgroup (1.5 CPUs) below this process's own."""
    name = f"fastlaunch-test-{uuid.uuid4().hex[:8]}"
    try:
        memory, cpu = _own_cgroup("memory") / name, _own_cgroup("cpu") / name
        memory.mkdir()
        cpu.mkdir()
    except (OSError, LookupError) as exc:
        pytest.skip(f"cannot create cgroup v1 memory/cpu groups here: {exc}")
    (memory / "memory.limit_in_bytes").write_text(str(220 * MiB))
    (cpu / "cpu.cfs_period_us").write_text("100000")
    (cpu / "cpu.cfs_quota_us").write_text("150000")
    try:
        yield memory, cpu
    finally:
        for group in (memory, cpu):
            remove_cgroup(group)


def inside(memory: Path, cpu: Path, *args: str) -> list[str]:
    enter = f'echo $$ > {memory}/cgroup.procs && echo $$ > {cpu}/cgroup.procs && exec "$@"'
    return ["sh", "-c", enter, "sh", *args]


def test_workers_command_reads_the_real_limits(limited: tuple[Path, Path], tmp_path: Path) -> None:
    memory, cpu = limited
    shutil.copy(ASSETS / "lifecycle/main.py", tmp_path / "main.py")
    out = subprocess.run(
        inside(memory, cpu, FASTLAUNCH, "workers", "--json"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    plan = json.loads(out.stdout)
    inputs = {i["name"]: i for i in plan["inputs"]}
    assert plan["memory_limit"] == 220 * MiB
    assert inputs["memory limit"]["source"].endswith(f"{memory.name}/memory.limit_in_bytes")
    assert inputs["CPU quota"]["value"] == "1.5 CPUs"
    assert plan["worker_memory"] and inputs["worker memory"]["source"].startswith("measured")


def test_server_starts_only_the_workers_that_fit(limited: tuple[Path, Path], tmp_path: Path) -> None:
    memory, cpu = limited
    shutil.copy(ASSETS / "lifecycle/main.py", tmp_path / "main.py")
    port = free_port()
    log = tmp_path / "server.log"
    # 1.5 CPUs -> 2 effective CPUs; x4 per core asks for 8 workers, which cannot fit in 220 MiB.
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WORKERS_PER_CORE": "4"}
    with running(
        inside(memory, cpu, FASTLAUNCH, "run"), cwd=tmp_path, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/"
    ) as proc:
        # The first worker can answer before the master has read its boot report: poll the log, bounded.
        planned = None
        deadline = time.monotonic() + 60
        while planned is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"Worker plan: (\d+) workers", log.read_text())
            if match:
                planned = int(match.group(1))
            else:
                time.sleep(0.1)
        assert planned is not None, log.read_text()
        assert 1 <= planned < 8
        assert "capped by memory" in log.read_text()
        assert len(wait_for_workers(proc.pid, planned)) == planned
