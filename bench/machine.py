"""What the numbers were measured on: machine, load, and the versions of everything in the path."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.postgres import pg_tool
from bench.wrk import wrk_path

PACKAGES = (
    "fastlaunch", "gunicorn", "uvicorn", "uvicorn-worker", "granian", "fastapi", "fastapi-cli", "starlette",
    "pydantic", "uvloop", "httptools",
)  # fmt: skip


def _first_line(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} usable)",
        "memory": f"{memory_gib():.1f} GiB",
        "os": f"{os_name()}, Linux {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    wrk = wrk_path()
    found["wrk"] = _first_line([wrk, "-v"]).split(" [")[0] if wrk else "not installed"
    postgres = pg_tool("postgres")
    found["postgresql"] = _first_line([postgres, "--version"]) if postgres else "not installed"
    return found
