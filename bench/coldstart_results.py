"""Cold-start figures of the generated images (``python -m bench.coldstart`` writes them, the judge reads them)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

RESULTS = Path(__file__).with_name("results") / "coldstart.json"


@dataclass(frozen=True)
class ColdStart:
    project: str
    variant: str  # "bytecode" (PRECOMPILE=1, what ships) or "no bytecode"
    size_mb: float
    seconds: list[float]  # podman run to the first 200
    cpu_seconds: list[float] = field(default_factory=list)  # CPU time the container had used by then

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def median_cpu_s(self) -> float | None:
        return median(self.cpu_seconds) if self.cpu_seconds else None


def save(results: list[ColdStart], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")


def load(path: Path = RESULTS) -> list[ColdStart]:
    if not path.is_file():
        return []
    return [ColdStart(**item) for item in json.loads(path.read_text())]
