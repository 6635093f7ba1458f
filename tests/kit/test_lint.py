from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from projects import PROJECTS, copy_project, init
from support import run_cli

from fastlaunch.kit.dockerignore import Matcher, read_patterns
from fastlaunch.kit.lint import lint, parse

IGNORE_OK = "**/.env\n.git\n"
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
# uv's documented two-step install: dependencies from the lock alone, then the code, then the project.
UV_TWO_STEP = """\
FROM python:3.12-slim
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/uv \\
    --mount=type=bind,source=uv.lock,target=uv.lock \\
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\
    uv sync --locked --no-install-project
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked
USER 10001
CMD ["fastlaunch", "run"]
"""
POETRY_TWO_STEP = """\
FROM python:3.12-slim
COPY pyproject.toml poetry.lock ./
RUN poetry install --no-root
COPY . .
RUN poetry install --only-root
USER 1
"""


def codes(text: str, ignore: str | None = IGNORE_OK, context: Path | None = None) -> list[tuple[int, str]]:
    matcher = None if ignore is None else Matcher(read_patterns(ignore))
    return [(f.line, f.code) for f in lint(text, matcher, context)]


def test_every_bad_pattern_is_found_with_its_line() -> None:
    assert codes(BAD, None) == [
        (1, "FL004"),  # no USER anywhere: reported at the final stage's FROM
        (1, "FL005"),  # untagged base
        (3, "FL008"),  # secret in ENV
        (4, "FL001"),  # code copied before the install on line 5
        (4, "FL006"),  # no .dockerignore
        (5, "FL007"),  # pip without --no-cache-dir
        (6, "FL009"),  # apt-get update alone
        (7, "FL003"),  # shell-form CMD
    ]


@pytest.mark.parametrize(
    ("dockerfile", "ignore", "expected"),
    [
        ('FROM python:latest\nUSER 1000\nCMD ["x"]\n', IGNORE_OK, [(1, "FL005")]),
        ("FROM python:3.12-slim\nUSER 1000\nENTRYPOINT uvicorn main:app\n", IGNORE_OK, [(3, "FL003"), (3, "FL014")]),
        # the shell form that execs the server: the shell replaces itself, the server is PID 1
        ("FROM python:3.12-slim\nUSER 1000\nCMD exec fastlaunch run\n", IGNORE_OK, []),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", ".git\n", [(2, "FL006")]),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", ".env*\n!.env\n", [(2, "FL006")]),
        # .env at the root only: app/.env still reaches the image
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", ".env\n", [(2, "FL006")]),
        ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\n", "**/.env\n", []),
        # a COPY of named files cannot bring a .env in
        ("FROM python:3.12-slim\nCOPY main.py requirements.txt ./\nUSER 1000\n", None, []),
        ("FROM python:3.12-slim\nCOPY app/ /app/\nUSER 1000\n", "app/.env\n", [(2, "FL006")]),
        (
            "FROM python:3.12-slim\nCOPY . .\nRUN pip install --no-cache-dir .\nUSER 1000\n",
            IGNORE_OK,
            [(2, "FL001"), (3, "FL002")],
        ),
        (
            "FROM python:3.12-slim\nCOPY pyproject.toml poetry.lock ./\nRUN poetry install\nUSER 1000\n",
            IGNORE_OK,
            [(3, "FL002")],
        ),
        (
            "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y --no-install-recommends curl \\\n"
            "    && rm -rf /var/lib/apt/lists/*\nUSER 1\n",
            IGNORE_OK,
            [],
        ),
        ("FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12-slim\nUSER 1\n", IGNORE_OK, []),
        (UV_TWO_STEP, IGNORE_OK, []),
        (POETRY_TWO_STEP, IGNORE_OK, []),
        (
            "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1 \\\n    API_TOKEN=\nRUN pip install \\\n  fastapi\nUSER 1\n",
            IGNORE_OK,
            [],
        ),
        ("FROM python:3.12-slim\nENV URL=postgresql://u:p@db/x\nUSER 1\n", IGNORE_OK, [(2, "FL008")]),
        (
            "FROM python:3.12-slim AS build\nRUN pip install --no-cache-dir x\nFROM build\nUSER 1\n",
            IGNORE_OK,
            [],
        ),
        # heredocs are read as Docker reads them: the pip inside counts, the text after EOF is not a new line
        (
            "# syntax=docker/dockerfile:1\nFROM python:3.12-slim\nRUN <<EOF\npip install fastapi\nEOF\nUSER 1\n",
            IGNORE_OK,
            [(3, "FL007")],
        ),
        # the escape directive: a backtick continues the line
        ("# escape=`\nFROM python:3.12-slim\nRUN pip install `\n    --no-cache-dir x\nUSER 1\n", IGNORE_OK, []),
    ],
)
def test_single_patterns(dockerfile: str, ignore: str | None, expected: list[tuple[int, str]]) -> None:
    assert codes(dockerfile, ignore) == expected


@pytest.mark.parametrize(
    ("user", "shown"),
    [("USER root", "(USER root)"), ("USER 0", "(USER 0)"), ("USER 0:0", "(USER 0:0)"), ("", "(no USER)")],
)
def test_root_is_named_as_written(user: str, shown: str) -> None:
    (finding,) = lint(f'FROM python:3.12-slim\n{user}\nCMD ["fastlaunch", "run"]\n', Matcher([]))
    assert finding.code == "FL004" and finding.message.endswith(shown)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # the server is not PID 1's exec: the shell gets SIGTERM and does not pass it on
        ('CMD ["sh", "-c", "alembic upgrade head && gunicorn -k uvicorn.workers.UvicornWorker main:app"]', "FL003"),
        ('ENTRYPOINT ["/bin/sh", "-c"]\nCMD ["gunicorn main:app"]', "FL003"),
        ('CMD ["sh", "-c", "alembic upgrade head && exec gunicorn main:app"]', None),
        # bash (5.1+) replaces itself with the last command of an && chain; dash stays PID 1 (checked on Debian 12)
        ('CMD ["bash", "-c", "alembic upgrade head && gunicorn main:app"]', None),
        ('CMD ["bash", "-c", "alembic upgrade head; gunicorn main:app & wait"]', "FL003"),
        ('CMD ["uvicorn", "main:app", "--reload"]', "FL011"),
        ('CMD ["fastapi", "dev", "main.py"]', "FL011"),
        ('CMD ["uvicorn", "main:app"]', None),
        ('CMD ["gunicorn", "-w", "4", "main:app"]', "FL012"),
        ('CMD ["gunicorn", "-w4", "main:app"]', "FL012"),
        ('CMD ["uvicorn", "main:app", "--workers=8"]', "FL012"),
        ('CMD ["sh", "-c", "exec gunicorn --workers $WORKERS main:app"]', None),
        ('CMD ["uvicorn", "main:app", "--forwarded-allow-ips=*"]', "FL013"),
        ('CMD ["uvicorn", "main:app", "--forwarded-allow-ips", "\'*\'"]', "FL013"),
        ('CMD ["uvicorn", "main:app", "--forwarded-allow-ips=10.0.0.0/8"]', None),
        ('ENV FORWARDED_ALLOW_IPS="*"\nCMD ["fastlaunch", "run"]', "FL013"),
        ('ENV FORWARDED_ALLOW_IPS="10.0.0.0/8,127.0.0.1"\nCMD ["fastlaunch", "run"]', None),
    ],
)
def test_server_command_rules(command: str, expected: str | None) -> None:
    # Where these servers listen (uvicorn's and gunicorn's loopback default) is test_lint_rules.py's subject.
    found = {f.code for f in lint(f"FROM python:3.12-slim\nUSER 1\n{command}\n", Matcher([]))} - {"FL014"}
    assert found == ({expected} if expected else set())


@pytest.mark.parametrize(
    ("base", "replacement"),
    [
        ("tiangolo/uvicorn-gunicorn-fastapi:python3.11", "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.11"),
        (
            "tiangolo/uvicorn-gunicorn-fastapi:python3.12-slim AS base",
            "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12-slim AS base",
        ),
        ("tiangolo/uvicorn-gunicorn:python3.13", "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.13"),
        # dated tags keep their Python; older Pythons move to the drop-in's oldest, latest was python3.11
        (
            "docker.io/tiangolo/uvicorn-gunicorn-fastapi:python3.11-slim-2024-11-02",
            "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.11-slim",
        ),
        ("tiangolo/uvicorn-gunicorn-fastapi:python3.8", "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.11"),
        ("tiangolo/uvicorn-gunicorn-fastapi", "FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.11"),
        ("--platform=linux/amd64 tiangolo/uvicorn-gunicorn-fastapi:latest", None),
    ],
)
def test_deprecated_tiangolo_base_names_the_drop_in(base: str, replacement: str | None) -> None:
    (finding,) = lint(f"FROM {base}\nUSER 1\n", Matcher([]))
    assert finding.code == "FL010" and "deprecated" in finding.message
    expected = replacement or "FROM --platform=linux/amd64 fastlaunch/uvicorn-gunicorn-fastapi:python3.11"
    assert finding.replacement == expected and finding.fix.startswith(expected)


def test_a_dockerignore_beside_the_dockerfile_decides_only_when_it_is_the_build_context(tmp_path: Path) -> None:
    project, docker = tmp_path / "project", tmp_path / "project" / "docker"
    docker.mkdir(parents=True)
    (docker / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY . .\nUSER 1\n")
    (docker / ".dockerignore").write_text(IGNORE_OK)
    (project / ".dockerignore").write_text(".git\n")
    assert run_cli(["lint", "docker/Dockerfile"], cwd=project).returncode == 0
    built_from_root = run_cli(["lint", "docker/Dockerfile", "--context", "."], cwd=project)
    assert built_from_root.returncode == 1
    assert "FL006 .dockerignore does not leave out .env" in built_from_root.stdout
    # BuildKit's per-Dockerfile ignore file wins over the context's
    (docker / "Dockerfile.dockerignore").write_text(IGNORE_OK)
    assert run_cli(["lint", "docker/Dockerfile", "--context", "."], cwd=project).returncode == 0


def test_findings_are_stable_and_json_carries_the_same(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(BAD)
    first = run_cli(["lint", "--format", "json"], cwd=tmp_path)
    second = run_cli(["lint", "--format", "json"], cwd=tmp_path)
    assert first.returncode == 1 and first.stdout == second.stdout
    report = json.loads(first.stdout)
    assert report["file"] == "Dockerfile"
    assert [(f["line"], f["code"]) for f in report["findings"]] == codes(BAD, None)
    assert set(report["findings"][0]) >= {"line", "code", "message", "fix"}
    text = run_cli(["lint"], cwd=tmp_path).stdout
    assert [line.split()[1] for line in text.splitlines() if line.startswith("Dockerfile:")] == [
        f["code"] for f in report["findings"]
    ]


def test_cli_exits_1_with_line_and_fix_and_never_prints_the_secret(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(BAD)
    result = run_cli(["lint"], cwd=tmp_path)
    assert result.returncode == 1
    assert "Dockerfile:7: FL003 CMD in shell form" in result.stdout
    assert 'fix: use the exec form: CMD ["fastlaunch", "run"]' in result.stdout
    assert "hunter2" not in result.stdout + result.stderr
    assert "8 finding(s)." in result.stdout


def test_a_dockerignore_docker_refuses_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nUSER 1\n")
    (tmp_path / ".dockerignore").write_text(".env\n!\n")
    result = run_cli(["lint"], cwd=tmp_path)
    assert result.returncode == 10 and 'illegal exclusion pattern: "!"' in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_dockerfile_is_a_lint_error(tmp_path: Path) -> None:
    result = run_cli(["lint", "nope/Dockerfile"], cwd=tmp_path)
    assert result.returncode == 10
    assert "No Dockerfile at nope/Dockerfile" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_parser_lint_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(BAD)
    # What a production image has: fastlaunch without the [lint] extra (the import is blocked, not uninstalled).
    code = "import sys; sys.modules['dockerfile'] = None; from fastlaunch.cli.entry import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "lint"], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 10, result.stdout + result.stderr
    assert "pip install 'fastlaunch[lint]'" in result.stderr and "Traceback" not in result.stderr


def test_parse_reads_docker_grammar() -> None:
    parsed = parse('# escape=`\nFROM python:3.12-slim AS build\nCMD ["a", "b c"]\nRUN echo `\n  hi\n')
    assert [(i.line, i.keyword, i.value) for i in parsed] == [
        (2, "FROM", ("python:3.12-slim", "AS", "build")),
        (3, "CMD", ("a", "b c")),
        (4, "RUN", ("echo   hi",)),
    ]


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_generated_dockerfiles_lint_clean(name: str, tmp_path: Path) -> None:
    project = copy_project(name, tmp_path)
    init(project, "docker")
    result = run_cli(["lint"], cwd=project)
    assert result.returncode == 0, result.stdout
    assert "Dockerfile: no findings." in result.stdout
