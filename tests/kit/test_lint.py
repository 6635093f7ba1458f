from __future__ import annotations

from pathlib import Path

import pytest
from projects import PROJECTS, copy_project, init
from support import run_cli

from fastlaunch.kit.lint import lint

IGNORE_OK = ".env\n.git\n"
# The recipe blog posts spread: every mistake fastlaunch lint knows, one per line where it can.
BAD = """\
FROM python
WORKDIR /app
ENV DATABASE_PASSWORD=hunter2
COPY . .
RUN pip install -r requirements.txt
RUN apt-get update
CMD fastlaunch run
"""


def codes(text: str, ignore: str | None, tmp_path: Path) -> list[tuple[int, str]]:
    dockerignore = None
    if ignore is not None:
        dockerignore = tmp_path / ".dockerignore"
        dockerignore.write_text(ignore)
    return [(f.line, f.code) for f in lint(text, dockerignore)]


def test_every_bad_pattern_is_found_with_its_line(tmp_path: Path) -> None:
    assert codes(BAD, None, tmp_path) == [
        (1, "DL004"),  # no USER anywhere: reported at the final stage's FROM
        (1, "DL005"),  # untagged base
        (3, "DL008"),  # secret in ENV
        (4, "DL001"),  # code copied before the install on line 5
        (4, "DL006"),  # no .dockerignore
        (5, "DL007"),  # pip without --no-cache-dir
        (6, "DL002"),  # apt-get update alone
        (7, "DL003"),  # shell-form CMD
    ]


@pytest.mark.parametrize(
    ("dockerfile", "ignore", "expected"),
    [
        ('FROM python:latest\nUSER 1000\nCMD ["x"]\n', IGNORE_OK, [(1, "DL005")]),
        ('FROM python:3.12-slim\nUSER root\nCMD ["x"]\n', IGNORE_OK, [(2, "DL004")]),
        ("FROM python:3.12-slim\nUSER 1000\nENTRYPOINT uvicorn main:app\n", IGNORE_OK, [(3, "DL003")]),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", ".git\n", [(2, "DL006")]),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", ".env*\n!.env\n", [(2, "DL006")]),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", "**/.env\n", []),
        (
            "FROM python:3.12-slim\nCOPY . .\nRUN pip install --no-cache-dir .\nUSER 1000\n",
            IGNORE_OK,
            [(2, "DL001"), (3, "DL002")],
        ),
        (
            "FROM python:3.12-slim\nCOPY pyproject.toml poetry.lock ./\nRUN poetry install\nUSER 1000\n",
            IGNORE_OK,
            [(3, "DL002")],
        ),
        (
            "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1 \\\n    API_TOKEN=\nRUN pip install \\\n  fastapi\nUSER 1\n",
            IGNORE_OK,
            [],
        ),
        ("FROM python:3.12-slim\nENV URL=postgresql://u:p@db/x\nUSER 1\n", IGNORE_OK, [(2, "DL008")]),
        (
            "FROM python:3.12-slim AS build\nRUN pip install --no-cache-dir x\nFROM build\nUSER 1\n",
            IGNORE_OK,
            [],
        ),
    ],
)
def test_single_patterns(dockerfile: str, ignore: str, expected: list[tuple[int, str]], tmp_path: Path) -> None:
    assert codes(dockerfile, ignore, tmp_path) == expected


def test_cli_exits_1_with_line_and_fix_and_never_prints_the_secret(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(BAD)
    result = run_cli(["lint"], cwd=tmp_path)
    assert result.returncode == 1
    assert "Dockerfile:7: DL003 CMD in shell form" in result.stdout
    assert 'fix: use the exec form: CMD ["fastlaunch", "run"]' in result.stdout
    assert "hunter2" not in result.stdout + result.stderr
    assert "8 finding(s)." in result.stdout


def test_cli_missing_dockerfile_is_a_template_error(tmp_path: Path) -> None:
    result = run_cli(["lint", "nope/Dockerfile"], cwd=tmp_path)
    assert result.returncode == 9
    assert "No Dockerfile at nope/Dockerfile" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_generated_dockerfiles_lint_clean(name: str, tmp_path: Path) -> None:
    project = copy_project(name, tmp_path)
    init(project, "docker")
    result = run_cli(["lint"], cwd=project)
    assert result.returncode == 0, result.stdout
    assert "Dockerfile: no findings." in result.stdout
