"""What `fastlaunch init` writes for the shapes real projects have (tests/assets/stacks): the database URL
under the name the app reads, or as its parts; the driver the project installs; a placeholder and a warning
for each setting the app requires; no database server for a project without one. The same fixtures are
started for real in tests/kit/test_stacks_run.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import ASSETS, run_cli

from fastlaunch.kit.database import detect_database

STACKS = ASSETS / "stacks"


def initialised(name: str, tmp_path: Path, *targets: str) -> tuple[Path, str]:
    project = tmp_path / name
    shutil.copytree(STACKS / name, project)
    result = run_cli(["init", *targets], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, result.stdout


def compose_env(project: Path) -> tuple[dict[str, Any], dict[str, str]]:
    spec = yaml.safe_load((project / "compose.yaml").read_text())
    return spec["services"], spec["x-app"]["environment"]


def test_flat_package_asyncpg_url_under_the_apps_name_and_required_key(tmp_path: Path) -> None:
    project, out = initialised("flat-asyncpg", tmp_path, "compose", "k8s")
    assert "app           notesvc.main:app in notesvc/main.py" in out
    assert "database      PostgreSQL, postgresql+asyncpg:// (asyncpg in the dependencies)" in out
    assert "NOTES_DB_URI: required, set by init (the database URL); BaseSettings field, notesvc/config.py:11" in out
    assert out.count("Warning: ") == 1 and "Warning: the app requires API_KEY (Starlette Config" in out
    services, env = compose_env(project)
    assert set(services) == {"db", "migrate", "app", "proxy"}
    assert env["NOTES_DB_URI"] == env["DATABASE_URL"]
    assert env["NOTES_DB_URI"].startswith("postgresql+asyncpg://${POSTGRES_USER:-app}:")
    assert env["API_KEY"] == "${API_KEY:?set API_KEY}"
    assert (project / ".env.example").read_text().splitlines()[-2:] == [
        "POSTGRES_PASSWORD=CHANGE-ME",
        "API_KEY=CHANGE-ME",
    ]
    secret = yaml.safe_load((project / "k8s/secret.yaml").read_text())["stringData"]
    assert secret == {
        "DATABASE_URL": "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE",
        "NOTES_DB_URI": "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE",
        "API_KEY": "CHANGE-ME",
    }


def test_src_package_psycopg3_parts_and_nested_alembic(tmp_path: Path) -> None:
    project, out = initialised("src-psycopg", tmp_path, "compose")
    assert "app           src.main:app in src/main.py" in out
    assert "alembic       yes (src/alembic.ini)" in out
    assert "Warning" not in out  # every required setting is a database part init fills
    _, env = compose_env(project)
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["POSTGRES_SERVER"] == "db" and env["POSTGRES_PORT"] == "5432"
    assert env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"


def test_no_database_no_server_and_the_required_key(tmp_path: Path) -> None:
    project, out = initialised("nodb", tmp_path, "compose", "kubernetes")
    assert "database      none found" in out
    services, env = compose_env(project)
    assert set(services) == {"app", "proxy"}
    assert services["app"]["command"] == ["fastlaunch", "run"]
    assert set(env) == {"API_KEY", "FORWARDED_ALLOW_IPS", "LOG_LEVEL"}
    assert "db-data" not in yaml.safe_load((project / "compose.yaml").read_text())["volumes"]
    assert yaml.safe_load((project / "k8s/secret.yaml").read_text())["stringData"] == {"API_KEY": "CHANGE-ME"}
    assert "Warning: the app requires API_KEY (os.environ, app.py:7)" in out


def test_env_example_of_the_project_is_completed_not_replaced(tmp_path: Path) -> None:
    project = tmp_path / "nodb"
    shutil.copytree(STACKS / "nodb", project)
    (project / ".env.example").write_text("MODEL_PATH=/models/m.bin\n")
    assert run_cli(["init", "compose"], cwd=project).returncode == 0
    text = (project / ".env.example").read_text()
    assert text.startswith("MODEL_PATH=/models/m.bin\n") and text.endswith("\nAPI_KEY=CHANGE-ME\n")


@pytest.mark.parametrize(
    ("packages", "schemes", "expected"),
    [
        ({"asyncpg": "uv.lock", "sqlalchemy": "uv.lock"}, {}, "postgresql+asyncpg"),
        ({"psycopg": "poetry.lock", "sqlalchemy": "poetry.lock"}, {}, "postgresql+psycopg"),
        ({"psycopg2-binary": "pdm.lock", "sqlalchemy": "pdm.lock"}, {}, "postgresql"),
        ({"psycopg": "uv.lock"}, {}, "postgresql"),  # psycopg.connect() takes the plain scheme
        ({"aiomysql": "uv.lock", "sqlalchemy": "uv.lock"}, {}, "mysql+aiomysql"),
        ({"asyncmy": "uv.lock", "sqlmodel": "uv.lock"}, {}, "mysql+asyncmy"),
        ({"pymysql": "uv.lock", "sqlalchemy": "uv.lock"}, {}, "mysql+pymysql"),
        # Both installed: the scheme the code writes decides (Alembic's sync driver beside the app's async one).
        ({"asyncpg": "l", "psycopg2": "l", "sqlalchemy": "l"}, {"postgresql": "alembic.ini"}, "postgresql"),
        ({"asyncpg": "l", "psycopg2": "l", "sqlalchemy": "l"}, {}, "postgresql+asyncpg"),
        ({"aiosqlite": "uv.lock", "sqlalchemy": "uv.lock"}, {}, "sqlite+aiosqlite"),
        ({"fastapi": "uv.lock"}, {"sqlite": "app/db.py"}, "sqlite"),
        ({"fastapi": "uv.lock"}, {}, None),
    ],
)
def test_driver_decides_server_and_scheme(
    packages: dict[str, str], schemes: dict[str, str], expected: str | None
) -> None:
    found = detect_database(packages, schemes)
    assert (found.scheme if found else None) == expected
    if found:
        assert found.server == (not expected.startswith("sqlite"))  # type: ignore[union-attr]
