"""What the overload scenario loads: (a) a CPU-bound endpoint, (b) the example service with its database pool.

The example runs as ``python -m bench`` runs it (bench/example.py, bench/cli.py's ``example_apps``): its
migrations applied once per database, posts seeded over HTTP by the first server, every server on the same
database. PostgreSQL (a throwaway cluster, bench/postgres.py) is the pool production has: asyncpg connections,
``DATABASE_POOL_SIZE`` (5) per worker, which a request waits on after it has started.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import example
from bench.plan import APPS_DIR, AppSpec

CPU = AppSpec("cpu", "CPU-bound `/cpu`", "cpuapp:app", APPS_DIR, ("/cpu",), "/healthz")


@dataclass(frozen=True)
class Scenario:
    app: AppSpec

    @property
    def name(self) -> str:
        return self.app.name

    def paths(self, port: int) -> list[str]:
        """The endpoints to load, taken in turn; the example's seeded first (its ``{id}`` needs a post)."""
        if not self.app.seeded:
            return list(self.app.endpoints)
        values = example.seed(port, example.load_config())
        return [example.expand(path, values) for path in self.app.endpoints]


def scenarios(databases: list[str], stack: ExitStack, work: Path, skipped: list[str]) -> list[Scenario]:
    """The CPU-bound endpoint, then the example on each database that can be had here (else skipped, with why)."""
    from bench.cli import example_apps  # the same set-up as the closed-loop runs

    if not databases:
        skipped.append("example service: no database asked for (--databases)")
        return [Scenario(CPU)]
    args = argparse.Namespace(no_example=False, databases=databases)
    return [Scenario(CPU), *(Scenario(app) for app in example_apps(args, stack, work, skipped))]
