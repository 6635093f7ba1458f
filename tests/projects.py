"""The fixture projects fastlaunch init is tried on: one per dependency manager, plus example/ once it exists."""

from __future__ import annotations

import shutil
from pathlib import Path

from support import ASSETS, run_cli

REPO = Path(__file__).resolve().parent.parent
INIT_ASSETS = ASSETS / "init"
# name -> directory; "single" is main.py + requirements.txt, "sqlite" an example-like PEP 621 service, "py310" a
# project whose requires-python starts below fastlaunch's floor, "srclayout" a package under src/ whose app is
# named on the command line, "sqlite-alembic" the tutorial SQLite + Alembic setup, "uv-workspace" a uv workspace
# whose service (packages/api) uses the workspace's own library (packages/lib, a src layout).
PROJECTS: dict[str, Path] = {p.name: p for p in sorted(INIT_ASSETS.iterdir()) if p.is_dir()}
if (REPO / "example" / "pyproject.toml").is_file():
    PROJECTS["example"] = REPO / "example"
ENV_MARKER = "FASTLAUNCH_TEST_SECRET=never-in-the-image"
# What an operator passes to `podman run` for a project (nothing: init's image runs as it is).
RUN_ENV: dict[str, list[str]] = {}
# What a user passes to `fastlaunch init` for a project, on top of the targets.
INIT_ARGS: dict[str, list[str]] = {
    "srclayout": ["--app", "src/webpkg/web.py:application"],
    "uv-workspace": ["--app", "packages/api/api/main.py:app"],
}
IGNORED = shutil.ignore_patterns(".venv", "__pycache__", "*.db", ".pytest_cache", "*.egg-info")


def copy_project(name: str, dest: Path) -> Path:
    """A private copy with local .env files holding a secret, as developers' checkouts have (one at the root,
    one in a subdirectory: a .dockerignore must leave out both)."""
    target = dest / name
    shutil.copytree(PROJECTS[name], target, ignore=IGNORED)
    (target / ".env").write_text(ENV_MARKER + "\n")
    (target / "conf").mkdir(exist_ok=True)
    (target / "conf" / ".env").write_text(ENV_MARKER + "\n")
    return target


def init(project: Path, *args: str) -> str:
    result = run_cli(["init", *args, *INIT_ARGS.get(project.name, [])], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(result.stdout)
