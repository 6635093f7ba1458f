"""The rules that read the whole build: the address the server listens on, the user the image runs as, the
stages that reach the final image, ENV's legacy form, unpinned images inside the build, `uv run` at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_cli

from fastlaunch.kit.dockerignore import Matcher
from fastlaunch.kit.lint import Finding, lint

HEAD = "FROM python:3.12-slim\nUSER 1000\n"


def findings(text: str) -> list[Finding]:
    return lint(text, Matcher([]))


def codes(text: str) -> set[str]:
    return {f.code for f in findings(text)}


def replacements(text: str, code: str) -> list[str | None]:
    """One item per finding of ``code``: its exact replacement line, or None."""
    return [f.replacement for f in findings(text) if f.code == code]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('CMD ["uvicorn", "main:app"]', {"FL014"}),  # uvicorn's default host is 127.0.0.1
        ('CMD ["uvicorn", "main:app", "--host", "0.0.0.0"]', set()),
        ('CMD ["uvicorn", "main:app", "--host=localhost"]', {"FL014"}),
        ('ENV UVICORN_HOST=0.0.0.0\nCMD ["uvicorn", "main:app"]', set()),
        ('CMD ["python", "-m", "uvicorn", "main:app", "--host", "::1"]', {"FL014"}),
        ('CMD ["uvicorn", "main:app", "--uds", "/tmp/app.sock"]', set()),
        ('CMD ["gunicorn", "main:app"]', {"FL014"}),
        ('ENV PORT=8000\nCMD ["gunicorn", "main:app"]', set()),  # gunicorn binds 0.0.0.0:$PORT when PORT is set
        ('CMD ["gunicorn", "-b", "127.0.0.1:8000", "main:app"]', {"FL014"}),
        ('CMD ["gunicorn", "--bind=0.0.0.0:8000", "main:app"]', set()),
        ('CMD ["gunicorn", "-b", "unix:/run/app.sock", "main:app"]', set()),
        ('ENV GUNICORN_CMD_ARGS="--bind 0.0.0.0:80"\nCMD ["gunicorn", "main:app"]', set()),
        ('CMD ["gunicorn", "-c", "conf.py", "main:app"]', set()),  # the config file decides: unknown
        ('COPY gunicorn.conf.py .\nCMD ["gunicorn", "main:app"]', set()),  # read from the working directory
        ('CMD ["hypercorn", "main:app"]', {"FL014"}),
        ('CMD ["hypercorn", "--bind", "0.0.0.0:8000", "main:app"]', set()),
        ('CMD ["granian", "--interface", "asgi", "main:app"]', {"FL014"}),
        ('ENV GRANIAN_HOST=0.0.0.0\nCMD ["granian", "main:app"]', set()),
        ('CMD ["fastapi", "run", "main.py"]', set()),  # fastapi run listens on 0.0.0.0
        ('CMD ["fastapi", "run", "--host", "127.0.0.1"]', {"FL014"}),
        ('CMD ["fastlaunch", "run"]', set()),
        ('ENV HOST=127.0.0.1\nCMD ["fastlaunch", "run"]', {"FL014"}),
        ('ENV BIND=127.0.0.1:8000\nCMD ["fastlaunch", "run"]', {"FL014"}),
        ('ENV BIND=0.0.0.0:8000 HOST=127.0.0.1\nCMD ["fastlaunch", "run"]', set()),  # BIND wins over HOST
        ('CMD ["fastlaunch", "run", "--host", "127.0.0.1"]', {"FL014"}),
        ("CMD uvicorn main:app --host 127.0.0.1", {"FL003", "FL014"}),
        ('CMD ["sh", "-c", "exec uvicorn main:app --host $HOST"]', set()),  # HOST unknown at lint time
        (
            'CMD ["sh", "-c", "echo starting uvicorn; pip install uvicorn && exec uvicorn main:app --host 0.0.0.0"]',
            set(),
        ),
        ('ENV HOST=127.0.0.1\nCMD ["sh", "-c", "exec uvicorn main:app --host $HOST"]', {"FL014"}),
        # the port against EXPOSE
        ('EXPOSE 8001\nCMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]', {"FL015"}),
        ('EXPOSE 8000/tcp\nCMD ["uvicorn", "main:app", "--host", "0.0.0.0"]', set()),
        ('EXPOSE 80\nCMD ["fastapi", "run"]', {"FL015"}),
        ('EXPOSE 80\nENV PORT=80\nCMD ["fastapi", "run"]', set()),  # fastapi run reads PORT
        ('EXPOSE 8000\nENV PORT=9000\nCMD ["fastlaunch", "run"]', {"FL015"}),
        # exec form: `$PORT` reaches the server as that text (FL020); the port itself is unknown
        ('EXPOSE 8000\nCMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "$PORT"]', {"FL020"}),
        ('CMD ["gunicorn", "-b", "0.0.0.0:${PORT}", "main:app"]', {"FL020"}),
        ('CMD ["sh", "-c", "exec gunicorn -b 0.0.0.0:${PORT:-8000} main:app"]', set()),
        ('ARG P=8000\nEXPOSE $P\nCMD ["fastlaunch", "run", "--port", "9000"]', {"FL015"}),  # the ARG's default
        ('ARG P\nEXPOSE $P\nCMD ["fastlaunch", "run", "--port", "9000"]', set()),  # no default: unknown
    ],
)
def test_the_address_each_server_listens_on(lines: str, expected: set[str]) -> None:
    assert codes(HEAD + lines + "\n") == expected


def test_a_loopback_fix_is_the_exact_line() -> None:
    (finding,) = findings(HEAD + 'CMD ["uvicorn", "app:app", "--host", "127.0.0.1"]\n')
    assert finding.replacement == 'CMD ["uvicorn", "app:app", "--host", "0.0.0.0"]'
    (finding,) = findings(HEAD + 'CMD ["gunicorn", "app:app"]\n')
    assert finding.replacement == 'CMD ["gunicorn", "app:app", "-b", "0.0.0.0:8000"]'
    (finding,) = findings(HEAD + 'ENV HOST=127.0.0.1\nCMD ["fastlaunch", "run"]\n')
    assert finding.fix.startswith("set HOST=0.0.0.0") and finding.replacement is None


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.11\n", set()),
        ("FROM docker.io/fastlaunch/uvicorn-gunicorn:python3.13-slim\nUSER root\n", set()),
        ("FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12\nENV WORKER_USER=root\n", {"FL004"}),
        (
            'FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12\nCMD ["uvicorn", "main:app", "--host", "0.0.0.0", '
            '"--port", "80"]\n',
            {"FL004"},
        ),  # not fastlaunch: nothing drops privileges
        ("FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12 AS base\nFROM base\n", set()),
        # an image of its own that runs fastlaunch with WORKER_USER (as the drop-in's own recipe does)
        ('FROM python:3.12-slim\nENV WORKER_USER=app PORT=80\nEXPOSE 80\nCMD ["fastlaunch", "run"]\n', set()),
        ('FROM python:3.12-slim\nCMD ["gunicorn", "-u", "app", "-b", "0.0.0.0:80", "main:app"]\n', set()),
        ("FROM gcr.io/distroless/python3-debian12:nonroot\n", set()),
        ("FROM gcr.io/distroless/python3-debian12:nonroot\nUSER root\n", {"FL004"}),
        ("FROM python:3.12-slim AS base\nUSER 1000\nFROM base\n", set()),  # USER inherited through FROM
        ("FROM python:3.12-slim AS base\nUSER 1000\nFROM python:3.12-slim\n", {"FL004"}),
    ],
)
def test_images_that_drop_privileges_themselves(dockerfile: str, expected: set[str]) -> None:
    assert codes(dockerfile) == expected


def test_fl004_says_what_else_must_change() -> None:
    (finding,) = findings("FROM python:3.12-slim\n")
    assert "USER 10001:10001" in finding.fix and "1024" in finding.fix
    (finding,) = findings("FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12\nENV WORKER_USER=root\n")
    assert "remove that WORKER_USER" in finding.fix
    (finding,) = findings(
        'FROM fastlaunch/uvicorn-gunicorn-fastapi:python3.12\nCMD ["gunicorn", "-b", ":80", "m:app"]\n'
    )
    assert finding.fix.startswith('CMD ["fastlaunch", "run"]') and "WORKER_USER" not in finding.message


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        # runtime findings only for stages that reach the final image
        ("FROM python:3.12-slim AS tool\nRUN pip install poetry\nFROM python:3.12-slim\nUSER 1\n", set()),
        ("FROM python:3.12-slim AS base\nRUN pip install poetry\nFROM base\nUSER 1\n", {(2, "FL007")}),
        ("FROM python:3.12-slim AS ci\nENV API_TOKEN=x\nFROM python:3.12-slim\nUSER 1\n", set()),
        ("FROM python:3.12-slim AS base\nENV API_TOKEN=x\nFROM base\nUSER 1\n", {(2, "FL008")}),
        # FL006 only for copies that can carry a directory, and only where they reach the image
        ("FROM python:3.12-slim\nCOPY ./pyproject.toml ./poetry.lock* /tmp/\nUSER 1\n", set()),
        ("FROM python:3.12-slim\nCOPY *.py requirements*.txt /app/\nUSER 1\n", set()),
        ("FROM python:3.12-slim\nCOPY * /app/\nUSER 1\n", {(2, "FL006")}),
        ("FROM python:3.12-slim\nCOPY src /app\nUSER 1\n", {(2, "FL006")}),
        ("FROM python:3.12-slim AS t\nCOPY . .\nFROM python:3.12-slim\nUSER 1\n", set()),
        (
            "FROM python:3.12-slim AS b\nCOPY . /src\nFROM python:3.12-slim\nCOPY --from=b /src /app\nUSER 1\n",
            {(2, "FL006")},
        ),
        # build rules apply to every stage
        ("FROM python AS b\nFROM python:3.12-slim\nUSER 1\n", {(1, "FL005")}),
    ],
)
def test_stage_aware(dockerfile: str, expected: set[tuple[int, str]]) -> None:
    assert {(f.line, f.code) for f in lint(dockerfile, None)} == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ENV TZ = Asia/Shanghai", ["ENV TZ=Asia/Shanghai"]),
        ("ENV GREETING = hello world", ["ENV GREETING='hello world'"]),
        ("ENV OPTS --a=1", [None]),
        ("ENV PYTHONUNBUFFERED 1", []),  # the legacy form without `=`: what it looks like, no finding
        ("ENV A=1 B=2", []),
    ],
)
def test_legacy_env_form(line: str, expected: list[str | None]) -> None:
    assert replacements(f"{HEAD}{line}\n", "FL016") == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/", True),
        ("COPY --from=ghcr.io/astral-sh/uv /uv /bin/", True),
        ("COPY --from=ghcr.io/astral-sh/uv:0.8.4 /uv /bin/", False),
        ("COPY --from=ghcr.io/astral-sh/uv@sha256:" + "a" * 64 + " /uv /bin/", False),
        ("COPY --from=localhost:5000/tools /x /y", True),
        ("RUN --mount=type=bind,from=busybox:latest,target=/bb true", True),
        ("ARG UV=0.8.4\nCOPY --from=ghcr.io/astral-sh/uv:${UV} /uv /bin/", False),
    ],
)
def test_unpinned_images_inside_the_build(line: str, expected: bool) -> None:
    assert ("FL017" in codes(f"{HEAD}{line}\n")) is expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('CMD ["uv", "run", "fastlaunch", "run"]', ['CMD ["uv", "run", "--no-sync", "fastlaunch", "run"]']),
        ('CMD ["uv", "run", "--no-sync", "fastlaunch", "run"]', []),
        ('ENV UV_NO_SYNC=1\nCMD ["uv", "run", "fastlaunch", "run"]', []),
        ('CMD ["sh", "-c", "alembic upgrade head && exec uv run fastlaunch run"]', [None]),
        ('CMD ["hatch", "run", "serve"]', [None]),
        ('CMD ["uvx", "fastlaunch", "run"]', [None]),
        ('CMD ["poetry", "run", "fastlaunch", "run"]', []),  # poetry run installs nothing
        ('CMD ["pdm", "run", "fastlaunch", "run"]', []),
    ],
)
def test_syncing_runners_at_start(command: str, expected: list[str | None]) -> None:
    assert replacements(f"{HEAD}{command}\n", "FL018") == expected


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ("FROM python:3.12-slim AS prod\nFROM prod AS dev\n", "--target prod"),
        ("FROM python:3.12-slim AS base\nFROM base AS production\nFROM base AS development\n", "--target production"),
        ("FROM python:3.12-slim AS dev\n", None),  # a file with one stage is that stage
        ("FROM python:3.12-slim AS dev\nFROM dev AS runtime\n", None),
    ],
)
def test_a_dev_target_last(stages: str, expected: str | None) -> None:
    found = [f for f in lint(stages + "USER 1\n", Matcher([])) if f.code == "FL019"]
    assert [f.fix for f in found if expected and expected in f.fix] == [f.fix for f in found]
    assert len(found) == (1 if expected else 0)


def test_a_dockerfile_docker_refuses_has_its_own_exit_code(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim   # the base\nUSER 1\n")
    result = run_cli(["lint"], cwd=tmp_path)
    assert result.returncode == 10, result.stdout + result.stderr
    assert "FROM requires either one or three arguments" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "Dockerfile").write_text("RUN echo hello\n")
    result = run_cli(["lint"], cwd=tmp_path)
    assert result.returncode == 10 and "no FROM" in result.stderr


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # an entrypoint script that ends in exec "$@": the server is CMD's, reported there, once
        ('ENTRYPOINT ["/docker-entrypoint.sh"]\nCMD ["uvicorn", "main:app"]', [(4, "FL014")]),
        ('ENTRYPOINT ["uvicorn"]\nCMD ["main:app", "--host", "0.0.0.0"]', []),
        ('ENTRYPOINT ["uvicorn", "main:app"]\nCMD ["--host", "127.0.0.1"]', [(3, "FL014")]),
        ('ENTRYPOINT ["sh", "-c"]\nCMD ["exec uvicorn main:app --host 0.0.0.0"]', []),
    ],
)
def test_entrypoint_and_cmd_are_one_command_line(lines: str, expected: list[tuple[int, str]]) -> None:
    assert [(f.line, f.code) for f in findings(HEAD + lines + "\n")] == expected


def test_files_in_the_context_that_set_the_address_make_it_unknown(tmp_path: Path) -> None:
    from fastlaunch.kit.lint import lint_file

    (tmp_path / ".dockerignore").write_text("**/.env\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(HEAD + 'COPY . .\nCMD ["gunicorn", "main:app"]\n')
    assert [f.code for f in lint_file(dockerfile)] == ["FL014"]
    (tmp_path / "gunicorn.conf.py").write_text("bind = '0.0.0.0:8000'\n")
    assert lint_file(dockerfile) == []
    dockerfile.write_text(HEAD + 'ENV HOST=127.0.0.1\nCMD ["fastlaunch", "run"]\n')
    assert [f.code for f in lint_file(dockerfile)] == ["FL014"]
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.fastlaunch]\nbind = "0.0.0.0:8000"\n')
    assert lint_file(dockerfile) == []
