"""Runs wrk (one thread, pinned to a chosen CPU) and reads its summary through wrk_report.lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.procs import HOST

SCRIPT = Path(__file__).with_name("wrk_report.lua")
MARK = "BENCH_JSON "


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_us: int
    connect: int
    read: int
    write: int
    status: int  # responses with a status >= 400 (wrk's "Non-2xx or 3xx")
    timeout: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    mean_us: float

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WrkResult:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(MARK):
            data: dict[str, Any] = json.loads(line[len(MARK) :])
            data.pop("bytes", None)
            return WrkResult(**data)
    raise WrkError(f"wrk printed no summary:\n{output[-2000:]}")


def run_wrk(port: int, path: str, *, duration_s: int, connections: int, cpu: int | None) -> WrkResult:
    """One wrk run; bounded by wrk's own duration plus a margin for its timeout."""
    wrk = wrk_path()
    if wrk is None:
        raise WrkError("wrk is not installed (apt-get install wrk; scripts/install-system-deps installs it)")
    args = [wrk, "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(SCRIPT)]
    args.append(f"http://{HOST}:{port}{path}")

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    done = subprocess.run(args, capture_output=True, text=True, timeout=duration_s + 30, preexec_fn=pin, check=False)
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)
