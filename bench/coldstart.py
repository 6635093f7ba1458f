"""Cold start of the generated images: ``podman run`` to the first 200, with and without precompiled bytecode.

Each project gets ``fastlaunch init docker`` and is built twice from the same Dockerfile, with
``--build-arg PRECOMPILE=1`` (what ships) and ``=0``; each image is then started afresh ``runs`` times,
alternating, and timed from just before ``podman run -d`` to the first 200 of its probe path. Podman runs with
the tests' private storage and stand-in base image (tests/podmanctl.py: nothing can be pulled here).

    python -m bench.coldstart [--runs 5] [--projects example,single]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from bench.coldstart_results import RESULTS, ColdStart, save
from bench.procs import HOST, http_get

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' podman harness: private storage, the stand-in base image

from podmanctl import Podman, cleanup_netfilter, prepared  # noqa: E402
from projects import PROJECTS, RUN_ENV, copy_project, init  # noqa: E402

PROBES = {"example": "/healthz", "single": "/healthz"}
VARIANTS = {"bytecode": "1", "no bytecode": "0"}
TAG = "localhost/fastlaunch-bench-coldstart-{project}-{variant}:latest"


class ColdStartUnavailable(RuntimeError):
    pass


def first_200(port: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(port, path, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise ColdStartUnavailable(f"no 200 from {path} within {timeout:.0f} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_usage_file(pid: int) -> Path | None:
    """The cgroup (v1 cpuacct or v2) file counting the CPU time of a container's processes, exited ones too."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"):
                if (found := Path(mount + path) / "cpuacct.usage").is_file():
                    return found
        if controllers == "" and (found := Path("/sys/fs/cgroup" + path) / "cpu.stat").is_file():
            return found
    return None


def cpu_seconds(usage: Path) -> float:
    text = usage.read_text()
    if usage.name == "cpuacct.usage":
        return int(text) / 1e9
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("usage_usec")) / 1e6


def start_once(podman: Podman, tag: str, project: str) -> tuple[float, float | None]:
    """Seconds from ``podman run`` to the first 200, and the CPU seconds the container had used by then (on a
    shared machine the wall time drifts with the load; the CPU time much less)."""
    port = free_port()
    args = [*RUN_ENV.get(project, []), "-p", f"{HOST}:{port}:8000"]
    began = time.monotonic()
    cid = podman("run", "-d", "--pull=never", *args, tag).stdout.strip()
    try:
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", cid).stdout.strip() or 0)
        usage = cpu_usage_file(pid) if pid else None
        first_200(port, PROBES[project], 120)
        wall = time.monotonic() - began
        return wall, cpu_seconds(usage) if usage else None
    finally:
        podman("rm", "-f", "-t", "2", cid, check=False)


def wheel(work: Path) -> Path:
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(wheels)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return wheels


def measure(projects: list[str], runs: int) -> list[ColdStart]:
    if not shutil.which("podman"):
        raise ColdStartUnavailable("podman is not installed (scripts/install-system-deps)")
    podman = prepared()
    work = Path(tempfile.mkdtemp(prefix="fastlaunch-coldstart-"))
    results: list[ColdStart] = []
    try:
        wheels = wheel(work)
        for project in projects:
            context = copy_project(project, work)
            init(context, "docker")
            tags = {}
            for variant, value in VARIANTS.items():
                tag = TAG.format(project=project, variant=value)
                podman.build(
                    context,
                    tag,
                    *("-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels"),
                    *("--build-arg", f"PRECOMPILE={value}"),
                )
                tags[variant] = tag
            start_once(podman, tags["bytecode"], project)  # the first run after a build warms the page cache
            timings: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            cpu: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            for n in range(runs):
                order = list(VARIANTS) if n % 2 == 0 else list(VARIANTS)[::-1]
                for variant in order:
                    wall, used = start_once(podman, tags[variant], project)
                    timings[variant].append(wall)
                    if used is not None:
                        cpu[variant].append(used)
            for variant, tag in tags.items():
                size = podman.image_size(tag) / 1e6
                results.append(ColdStart(project, variant, round(size, 1), timings[variant], cpu[variant]))
                print(
                    f"{project}, {variant}: {size:.1f} MB, cold start median {median(timings[variant]):.2f} s"
                    + (f", {median(cpu[variant]):.2f} s CPU" if cpu[variant] else "")
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cleanup_netfilter()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="starts per image (default 5)")
    parser.add_argument("--projects", default="example,single", help=f"subset of {','.join(sorted(PROJECTS))}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        results = measure([p for p in args.projects.split(",") if p], args.runs)
    except ColdStartUnavailable as exc:
        print(f"cold start not measured: {exc}", file=sys.stderr)
        return 2
    save(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
