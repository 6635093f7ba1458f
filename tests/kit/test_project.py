from __future__ import annotations

import sys
from pathlib import Path

import pytest
from projects import INIT_ASSETS

from fastlaunch.core.pyproject import read_tool_table
from fastlaunch.core.settings import load_settings
from fastlaunch.kit.project import Project, _dependency_names, detect


def detected(root: Path) -> Project:
    table, path = read_tool_table(root)
    return detect(load_settings(cli={}, environ={}, pyproject=table, pyproject_path=path, project_dir=root))


@pytest.mark.parametrize(
    ("name", "manager", "python", "app", "healthz", "readyz"),
    [
        ("single", "requirements", f"3.{sys.version_info.minor}", "main:app", True, False),
        ("sqlite", "pep621", "3.11", "app.main:app", True, True),
        ("poetry", "poetry", "3.11", "app.main:app", False, False),
        ("uv", "uv", "3.11", "main:app", True, False),
    ],
)
def test_detects_manager_python_app_and_probes(
    name: str, manager: str, python: str, app: str, healthz: bool, readyz: bool
) -> None:
    project = detected(INIT_ASSETS / name)
    assert (project.manager, project.python, project.app.import_string) == (manager, python, app)
    assert (project.healthz, project.readyz, project.alembic) == (healthz, readyz, False)
    assert not project.declares_fastlaunch


def test_python_version_sources_in_order(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = "~=3.12"\n')
    assert (detected(tmp_path).python, detected(tmp_path).python_source) == ("3.12", "requires-python '~=3.12'")
    (tmp_path / ".python-version").write_text("3.13.1\n")
    assert detected(tmp_path).python == "3.13"


def test_alembic_probes_module_and_declared_fastlaunch(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\nfrom fastlaunch.probes import add_probes\napp = FastAPI()\nadd_probes(app)\n"
    )
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    (tmp_path / "requirements.txt").write_text("fastapi\nFastLaunch[extra]>=0.1\n")
    project = detected(tmp_path)
    assert (project.alembic, project.healthz, project.readyz, project.declares_fastlaunch) == (True, True, True, True)
    assert project.name == tmp_path.name.lower().replace("_", "-")


def test_a_requirements_lock_beside_pyproject_is_what_the_image_installs(tmp_path: Path) -> None:
    """A requirements.txt (a lock of pyproject.toml's dependencies, as the example's) is all the image installs:
    fastlaunch listed only in pyproject.toml is not in it, so the image must add it."""
    (tmp_path / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["fastapi", "fastlaunch"]\n')
    (tmp_path / "requirements.txt").write_text("fastapi==0.110.0\n")
    assert (detected(tmp_path).manager, detected(tmp_path).declares_fastlaunch) == ("requirements", False)
    (tmp_path / "requirements.txt").write_text("fastapi==0.110.0\nfastlaunch==0.1.0\n")
    assert detected(tmp_path).declares_fastlaunch


def test_dependency_names_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    # What a pinned, hashed requirements file holds: extras, markers, comments, options, continuations, any case.
    (tmp_path / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (tmp_path / "requirements.txt").write_text(
        "--index-url https://pypi.org/simple\n"
        "FastLaunch[metrics]==0.4 ; python_version >= '3.11'  # the server\n"
        "psycopg_binary==3.2.1 \\\n    --hash=sha256:00\n"
        "Zope.Interface>=6\n"
        "https://example.com/wheels/tool-1.0-py3-none-any.whl\n"
        "-e .\n"
    )
    assert _dependency_names(tmp_path, {}) == {"fastlaunch", "psycopg-binary", "zope-interface"}
    project = detected(tmp_path)
    assert project.declares_fastlaunch
    assert project.database is not None and project.database.backend == "postgresql"


def test_each_python_file_is_parsed_once(tmp_path: Path) -> None:
    from fastlaunch.kit.sources import _parse

    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/healthz')\ndef h(): ...\n"
    )
    (tmp_path / "settings.py").write_text("import os\nDATA = os.environ.get('DATA_DIR', 'data')\n")
    _parse.cache_clear()
    detected(tmp_path)
    assert _parse.cache_info().misses == 2  # routes, settings, writes and SQLite paths walk the same trees
