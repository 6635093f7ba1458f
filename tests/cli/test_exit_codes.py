"""Each exit code comes from the situation its name says, for every command: one situation per code here, or,
where the situation needs a running server or a database, the test elsewhere that asserts that code by name."""

from __future__ import annotations

import ast
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import ASSETS, ROOT, free_port, run_cli

from fastlaunch.core.exceptions import ExitCode

DOCS_APP = (ASSETS / "docsapp/main.py").read_text()
LOCAL = {"HOST": "127.0.0.1"}
# Alembic's env.py fails: the upgrade itself fails, after the lock and the revision check.
ALEMBIC = {
    "alembic.ini": "[alembic]\nscript_location = migrations\n",
    "migrations/env.py": "raise RuntimeError('this migration is broken')\n",
    "migrations/versions/0001_first.py": "revision = '0001'\ndown_revision = None\n\n\ndef upgrade():\n    pass\n",
}

CLEAN_DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
USER 10001
CMD ["fastlaunch", "run"]
"""


@dataclass
class Situation:
    code: ExitCode
    args: list[str]
    says: str  # a fragment of the message (stderr, or stdout for findings)
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


SITUATIONS = {
    "lint: nothing found": Situation(
        ExitCode.OK,
        ["lint"],
        "no findings",
        files={"Dockerfile": CLEAN_DOCKERFILE, ".dockerignore": "**/.env\n.git\n"},
    ),
    "run: a setting that is not valid": Situation(
        ExitCode.CONFIG, ["run"], "WEB_CONCURRENCY='abc'", env={"WEB_CONCURRENCY": "abc"}
    ),
    "settings: a setting that is not valid": Situation(
        ExitCode.CONFIG, ["settings"], "WORKERS_PER_CORE='x'", env={"WORKERS_PER_CORE": "x"}
    ),
    "lint: a finding": Situation(
        ExitCode.FINDINGS, ["lint"], "finding(s)", files={"Dockerfile": "FROM python\nCMD fastlaunch run\n"}
    ),
    "run: an unknown option": Situation(ExitCode.USAGE, ["run", "--wokers", "2"], "--wokers"),
    "lint: an unknown --format": Situation(
        ExitCode.USAGE, ["lint", "--format", "xml"], "--format", files={"Dockerfile": "FROM python:3.12-slim\n"}
    ),
    "check: an unknown --format": Situation(ExitCode.USAGE, ["check", "--format", "xml"], "--format"),
    "init: an unknown option": Situation(ExitCode.USAGE, ["init", "--domian", "x"], "--domian"),
    "run: the app's own file does not compile": Situation(
        ExitCode.APP_BOOT, ["run"], "invalid syntax", files={"main.py": "def app(:\n"}, env=LOCAL
    ),
    "run: the app's module does not exist": Situation(
        ExitCode.APP_NOT_FOUND, ["run"], "Could not find module 'mian'", env={"APP_MODULE": "mian:app"}
    ),
    "dev: the app factory returns no app": Situation(
        ExitCode.APP_NOT_FOUND,
        ["dev", "--no-reload", "--app", "main:make()"],
        "returned NoneType",
        files={"main.py": "def make():\n    return None\n"},
    ),
    "run: the port is in use": Situation(ExitCode.BIND, ["run"], "is already in use", env=LOCAL),
    "run: the migration fails": Situation(
        ExitCode.MIGRATION,
        ["run"],
        "alembic upgrade head",
        files=ALEMBIC,
        env={**LOCAL, "DATABASE_URL": "sqlite:///app.db", "MIGRATE": "on"},
    ),
    "run: PRE_START_PATH names no script": Situation(
        ExitCode.PRESTART, ["run"], "PRE_START_PATH='nowhere.sh'", env={**LOCAL, "PRE_START_PATH": "nowhere.sh"}
    ),
    "init: a changed file would be overwritten": Situation(
        ExitCode.INIT, ["init", "docker"], "--force", files={"Dockerfile": "FROM python:3.12-slim\n"}
    ),
    "lint: no Dockerfile": Situation(ExitCode.LINT, ["lint", "nowhere/Dockerfile"], "No Dockerfile at"),
}
# Codes whose situation needs a server that starts, or a database: asserted by name in these tests.
ELSEWHERE = {
    ExitCode.DATABASE: "tests/prestart/test_isolation.py",
    ExitCode.WORKER_ACCESS: "tests/launcher/test_worker_access.py",
    ExitCode.MEMORY_CAP: "tests/launcher/test_restart_guard.py",
}


@pytest.mark.parametrize("name", list(SITUATIONS))
def test_the_code_names_the_situation(tmp_path: Path, name: str) -> None:
    situation = SITUATIONS[name]
    (tmp_path / "main.py").write_text(DOCS_APP)
    for path, text in situation.files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1] if situation.code == ExitCode.BIND else free_port()
        result = run_cli(situation.args, cwd=tmp_path, env={"PORT": str(port), **situation.env})
    output = result.stdout + result.stderr
    assert result.returncode == situation.code, output
    assert situation.says in output
    # fastlaunch's own message carries no traceback (Alembic's output above it is the migration's own).
    assert "Traceback" not in result.stderr[result.stderr.find("Error: ") :]
    assert "Listening at" not in output


def asserted_by_name(path: Path) -> set[str]:
    """The ExitCode members a test file compares a result with."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Attribute) and isinstance(side.value, ast.Name) and side.value.id == "ExitCode":
                    found.add(side.attr)
    return found


def test_every_code_has_its_situation() -> None:
    for code, path in ELSEWHERE.items():
        assert code.name in asserted_by_name(ROOT / path), f"{path} does not assert ExitCode.{code.name}"
    assert {s.code for s in SITUATIONS.values()} | set(ELSEWHERE) == set(ExitCode)
