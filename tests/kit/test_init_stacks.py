"""What `fastlaunch init` writes for the shapes real projects have (tests/assets/stacks): the database URL
under the name the app reads, or as its parts; the driver the project installs; a placeholder and a warning
for each setting the app requires; no database server for a project without one. The same fixtures are
started for real in tests/kit/test_stacks_run.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import ASSETS, run_cli

from fastlaunch.kit.database import detect_database
from fastlaunch.kit.requirements import SELF_GREP

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
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert ".fastlaunch-migrate.lock" in ignored and "**/*.migrate.lock" in ignored
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


def test_package_rooted_project_on_mysql_driver_gets_mariadb_and_its_parts(tmp_path: Path) -> None:
    project, out = initialised("backend", tmp_path, "compose")
    assert "app           main:app in main.py (automatic: found main.py)" in out  # backend/ holds __init__.py
    assert "database      MySQL/MariaDB, mysql+pymysql:// (pymysql in the dependencies)" in out
    services, env = compose_env(project)
    assert services["db"]["image"] == "mariadb:11"
    assert env["DATABASE_URL"].startswith("mysql+pymysql://${MARIADB_USER:-app}:${MARIADB_PASSWORD:?")
    assert (env["DB_HOST"], env["DB_PORT"], env["DB_NAME"]) == ("db", "3306", "${MARIADB_DATABASE:-app}")
    assert "Warning" not in out


def test_no_database_no_server_and_the_required_key(tmp_path: Path) -> None:
    project, out = initialised("nodb", tmp_path, "compose", "kubernetes")
    assert "database      none found" in out
    assert "writes        logs (app.py:13): owned by the image's app user" in out
    services, env = compose_env(project)
    assert set(services) == {"app", "proxy"}
    assert services["app"]["command"] == ["fastlaunch", "run"]
    assert set(env) == {"API_KEY", "FORWARDED_ALLOW_IPS", "LOG_LEVEL"}
    assert "db-data" not in yaml.safe_load((project / "compose.yaml").read_text())["volumes"]
    assert yaml.safe_load((project / "k8s/secret.yaml").read_text())["stringData"] == {"API_KEY": "CHANGE-ME"}
    assert "Warning: the app requires API_KEY (os.environ, app.py:10)" in out


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


def write_project(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def test_requirements_installing_the_project_and_including_files(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "svc",
        {
            "main.py": APP,
            "requirements.txt": "-e .[pg]\n-r requirements/base.txt\n",
            "requirements/base.txt": "fastapi\n-c constraints.txt\npytest>=8\n",
            "requirements/constraints.txt": "fastapi<1\n",
            "pyproject.toml": '[project]\nname = "svc"\ndependencies = ["httpx"]\n'
            '[project.optional-dependencies]\npg = ["asyncpg", "sqlalchemy"]\n',
        },
    )
    result = run_cli(["init", "docker"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert "requirements (requirements.txt, requirements/base.txt, requirements/constraints.txt, pyproject.toml)" in (
        result.stdout
    )
    assert "install(s) development tools (pytest): the image carries them too" in result.stdout
    # The extra's driver counts as installed.
    assert "database      PostgreSQL, postgresql+asyncpg:// (asyncpg in the dependencies)" in result.stdout
    dockerfile = (project / "Dockerfile").read_text()
    assert "COPY requirements/base.txt ./requirements/\n" in dockerfile
    assert "COPY requirements/constraints.txt ./requirements/\n" in dockerfile
    assert "|| test $? = 1; } > requirements.image.txt" in dockerfile and "extras = ['pg']" in dockerfile
    # What the build's grep keeps: everything but the line installing the project.
    kept = subprocess.run(
        ["grep", "-vE", SELF_GREP],
        input="-e .[pg]\n.\n-e file:.\nfastapi\n-r x.txt\n./vendor/pkg\n",
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert kept == "fastapi\n-r x.txt\n./vendor/pkg\n"


def test_pdm_lock_is_exported_exactly_and_other_locks_are_refused(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "svc",
        {"main.py": APP, "pyproject.toml": '[project]\nname = "svc"\ndependencies = ["fastapi"]\n', "pdm.lock": ""},
    )
    result = run_cli(["init", "docker"], cwd=project)
    assert result.returncode == 0 and "dependencies  pdm (pyproject.toml, pdm.lock)" in result.stdout
    assert "pdm export --prod --format requirements --output requirements.txt" in (project / "Dockerfile").read_text()
    other = write_project(tmp_path / "pipenv", {"main.py": APP, "Pipfile.lock": "{}"})
    refused = run_cli(["init", "docker"], cwd=other)
    assert refused.returncode == 9 and "locked in Pipfile.lock" in refused.stderr
    assert "pipenv requirements > requirements.txt" in refused.stderr
    assert not (other / "Dockerfile").exists()


def test_directories_the_app_writes_under_its_code_are_made_writable(tmp_path: Path) -> None:
    code = (
        "import logging, os\nfrom pathlib import Path\nfrom fastapi import FastAPI\n\n"
        'BASE_DIR = Path(__file__).resolve().parent\nLOG_DIR = BASE_DIR / "logs"\nLOG_DIR.mkdir(exist_ok=True)\n'
        'os.makedirs("uploads", exist_ok=True)\n'
        'handler = logging.FileHandler(os.path.join(os.path.dirname(__file__), "var", "app.log"))\n'
        'os.makedirs(os.environ.get("CACHE", "/tmp/c"), exist_ok=True)\nopen("/tmp/x", "w")\napp = FastAPI()\n'
    )
    project = write_project(
        tmp_path / "svc", {"app/__init__.py": "", "app/main.py": code, "requirements.txt": "fastapi\n"}
    )
    result = run_cli(["init", "docker", "kubernetes"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert "writes        app/logs (app/main.py:7), uploads (app/main.py:8), app/var (app/main.py:9)" in result.stdout
    assert (
        "RUN install -d -o 10001 -g 10001 /app/app/logs /app/uploads /app/app/var\n"
        in (project / "Dockerfile").read_text()
    )
    mounts = yaml.safe_load((project / "k8s/deployment.yaml").read_text())["spec"]["template"]["spec"]
    paths = [m["mountPath"] for m in mounts["containers"][0]["volumeMounts"]]
    assert paths == ["/tmp", "/app/app/logs", "/app/uploads", "/app/app/var"]  # the root filesystem is read-only
    assert result.stdout.count("Warning: ") == 1
    assert "Warning: app/main.py:10 writes to os.environ.get('CACHE', '/tmp/c'), a path known only at run time" in (
        result.stdout
    )


def test_package_rooted_project_importing_itself_is_sent_to_its_parent(tmp_path: Path) -> None:
    backend = write_project(
        tmp_path / "backend",
        {
            "__init__.py": "",
            "core.py": "X = 1\n",
            "main.py": "from backend.core import X\n" + APP,
            "requirements.txt": "",
        },
    )
    refused = run_cli(["init", "docker"], cwd=backend)
    assert refused.returncode == 9, refused.stdout + refused.stderr
    assert "is itself a Python package (it holds __init__.py) and the app's module imports it as backend.main" in (
        refused.stderr
    )
    assert f"Run fastlaunch init in {tmp_path.resolve()} (the app is then backend.main:app)" in refused.stderr
    assert "outside the project" not in refused.stderr


def test_server_driver_and_a_sqlite_default_image_alone_keeps_sqlite_compose_uses_the_server(tmp_path: Path) -> None:
    app = 'import os\nURL = os.getenv("DATABASE_URL", "sqlite+aiosqlite:///./app.db")\n' + APP
    project = write_project(
        tmp_path / "svc", {"main.py": app, "requirements.txt": "fastapi\nsqlalchemy\nasyncpg\naiosqlite\n"}
    )
    result = run_cli(["init", "compose"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert 'DATABASE_URL="sqlite+aiosqlite:////data/app.db"' in (project / "Dockerfile").read_text()
    services, env = compose_env(project)
    assert "db" in services and env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "app-data" not in yaml.safe_load((project / "compose.yaml").read_text())["volumes"]
