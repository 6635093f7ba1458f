"""Where a project keeps ``alembic.ini``: its directory, else one or two levels down (``src/alembic.ini``,
``backend/alembic.ini``). Read by the prestart step (which runs Alembic from the project directory) and by
``fastlaunch init``; a bounded walk, so a start-up pays a few directory reads at most."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "alembic.ini"
# Directories that never hold the project's own migrations, and are often large.
SKIPPED = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "tests", "test", "build", "dist", ".tox"})
MAX_DEPTH = 2


def find_alembic_ini(project_dir: Path) -> Path | None:
    """The project's alembic.ini: the shallowest one, the first in name order at that depth."""
    if (project_dir / NAME).is_file():
        return project_dir / NAME
    level = [project_dir]
    for _ in range(MAX_DEPTH):
        below: list[Path] = []
        for directory in level:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            below += [
                Path(e.path) for e in entries if e.is_dir() and e.name not in SKIPPED and not e.name.startswith(".")
            ]
        found = [d / NAME for d in below if (d / NAME).is_file()]
        if found:
            return found[0]
        level = below
    return None
