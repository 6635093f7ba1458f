"""The "already at head" shortcut: decided from the migration files and alembic_version without starting
Alembic, and only ever used to skip work: anything it cannot read runs Alembic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from posts import EXAMPLE
from support import run_cli

from fastlaunch.prestart.revisions import script_head

# An env.py that fails whenever Alembic really runs.
TRIPWIRE = 'raise SystemExit("env.py ran")\n'


def revision(versions: Path, name: str, body: str) -> None:
    (versions / f"{name}.py").write_text(f'"""{name}"""\n{body}\n\ndef upgrade() -> None:\n    pass\n')


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE / "alembic", project / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "alembic.ini", project)
    return project


def test_at_head_alembic_is_not_started_and_a_new_revision_starts_it(project: Path, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'posts.db'}"}
    first = run_cli(["prestart"], cwd=project, env=env)
    assert first.returncode == 0, first.stderr
    assert "Running upgrade  -> 0001" in first.stderr

    (project / "alembic" / "env.py").write_text(TRIPWIRE)
    again = run_cli(["prestart"], cwd=project, env=env)
    assert again.returncode == 0, again.stderr
    assert "Migrations are at head (0001, read from alembic_version); alembic not run" in again.stderr

    revision(project / "alembic" / "versions", "0002_more", 'revision = "0002"\ndown_revision = "0001"')
    behind = run_cli(["prestart"], cwd=project, env=env)
    assert behind.returncode == 7
    assert "env.py ran" in behind.stderr  # the database was behind: Alembic ran


def test_script_head_reads_plain_chains_and_gives_up_on_the_rest(project: Path) -> None:
    ini, versions = project / "alembic.ini", project / "alembic" / "versions"
    assert script_head(ini, project) == "0001"
    revision(versions, "0002_more", 'revision: str = "0002"\ndown_revision: str | None = "0001"')
    assert script_head(ini, project) == "0002"

    revision(versions, "0003_side", 'revision = "0003"\ndown_revision = "0001"')
    assert script_head(ini, project) is None  # two heads: `upgrade head` is Alembic's to refuse
    revision(versions, "0004_merge", 'revision = "0004"\ndown_revision = ("0002", "0003")')
    assert script_head(ini, project) == "0004"

    revision(versions, "0005_branch", 'revision = "0005"\ndown_revision = "0004"\nbranch_labels = ("x",)')
    assert script_head(ini, project) is None
    (versions / "0005_branch.py").unlink()
    revision(versions, "0005_computed", 'revision = "00" + "05"\ndown_revision = "0004"')
    assert script_head(ini, project) is None
    (versions / "0005_computed.py").unlink()

    ini.write_text(ini.read_text().replace("script_location = %(here)s/alembic", "script_location = app:migrations"))
    assert script_head(ini, project) is None
