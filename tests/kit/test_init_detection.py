"""fastlaunch init on the shapes real projects have: Python constraints below fastlaunch's floor, src layouts,
SQLite defaults, their own .dockerignore, uv workspaces, apps found outside the project. The images these
files build are built and run in tests/kit/test_images.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from projects import copy_project, init
from support import run_cli

from fastlaunch.core.exceptions import InitError
from fastlaunch.kit.dockerignore import Matcher, read_patterns
from fastlaunch.kit.lint import Instruction, parse
from fastlaunch.kit.project import detect_python


def final_stage(project: Path) -> list[Instruction]:
    instructions = parse((project / "Dockerfile").read_text())
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            env.update((k, " ".join(shlex.split(v))) for k, v in zip(ins.value[::2], ins.value[1::2], strict=True))
    return env


@pytest.mark.parametrize(
    ("requires", "poetry", "expected", "raised"),
    [
        (">=3.10", None, "3.11", True),
        ("<3.13,>=3.10", None, "3.11", True),  # the first "3.N" in the text was 3.13
        ("!=3.12.*,>=3.11", None, "3.11", False),  # ... and 3.12 here, which the project excludes
        ("~=3.12", None, "3.12", False),
        (">=3.12.1", None, "3.12", False),
        ("==3.13.2", None, "3.13", False),
        (None, "^3.9", "3.11", True),
        (None, "~3.12", "3.12", False),
        (None, ">=3.9 <3.14", "3.11", True),
        (None, "^3.8 || ^3.12", "3.11", True),
        (None, "~3.8 || ~3.12", "3.12", False),
    ],
)
def test_python_tag_is_the_oldest_both_allow(
    requires: str | None, poetry: str | None, expected: str, raised: bool
) -> None:
    pyproject: dict[str, object] = {}
    if requires:
        pyproject["project"] = {"requires-python": requires}
    if poetry:
        pyproject["tool"] = {"poetry": {"dependencies": {"python": poetry}}}
    python, source = detect_python(Path("/nonexistent"), pyproject)
    assert python == expected
    assert ("raised to 3.11, the oldest Python fastlaunch installs on" in source) is raised, source


@pytest.mark.parametrize("requires", ["<3.11", "==3.10.*", "banana"])
def test_python_constraint_that_excludes_fastlaunch_is_refused(requires: str) -> None:
    with pytest.raises(InitError) as caught:
        detect_python(Path("/nonexistent"), {"project": {"requires-python": requires}})
    assert caught.value.hint


def test_below_the_floor_the_summary_says_why_and_the_image_uses_the_floor(tmp_path: Path) -> None:
    project = copy_project("py310", tmp_path)
    out = init(project, "docker")
    assert (
        "python        3.11 (requires-python '>=3.10'; 3.10 raised to 3.11, the oldest Python fastlaunch installs on)"
        in out
    )
    assert final_stage(project)[0].value == ("python:3.11-slim",)
    (project / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = "<3.11"\n')
    refused = run_cli(["init", "docker", "--force"], cwd=project)
    assert refused.returncode == 9 and "allows no Python that fastlaunch runs on" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_src_layout_app_imports_from_the_path_the_image_puts_on_pythonpath(tmp_path: Path) -> None:
    project = copy_project("srclayout", tmp_path)
    out = init(project, "docker")  # with --app src/webpkg/web.py:application (projects.INIT_ARGS)
    assert "the image puts /app/src on PYTHONPATH" in out
    env = env_of(final_stage(project))
    assert env["APP_MODULE"] == "webpkg.web:application" and env["PYTHONPATH"] == "/app/src"
    # What the container's fastlaunch does with those two: find the app where the image copies the code.
    check = run_cli(
        ["workers", "--json"],
        cwd=project,
        env={"APP_MODULE": env["APP_MODULE"], "PYTHONPATH": str(project / "src")},
    )
    assert check.returncode == 0, check.stderr


def test_app_imported_from_outside_the_project_is_one_line_with_the_fix(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "mypkg").mkdir(parents=True)
    (elsewhere / "mypkg" / "__init__.py").write_text("")
    (elsewhere / "mypkg" / "web.py").write_text("from fastapi import FastAPI\napplication = FastAPI()\n")
    project = copy_project("single", tmp_path)
    # As after `pip install -e .` from that other checkout: the package is on sys.path, not in the project.
    result = run_cli(
        ["init", "--dry-run", "docker", "--app", "mypkg.web:application"],
        cwd=project,
        env={"PYTHONPATH": str(elsewhere)},
    )
    assert result.returncode == 9, result.stdout + result.stderr
    assert "outside the project" in result.stderr and "--app" in result.stderr
    assert "Traceback" not in result.stderr and "ValueError" not in result.stderr


def test_sqlite_default_gets_a_data_directory_the_app_user_owns(tmp_path: Path) -> None:
    project = copy_project("sqlite-alembic", tmp_path)
    out = init(project, "docker")
    assert "database      SQLite (sqlite:///./notes.db in app/db.py): the image keeps it in /data" in out
    stage = final_stage(project)
    assert env_of(stage)["DATABASE_URL"] == "sqlite:////data/notes.db"
    runs = [" ".join(i.value) for i in stage if i.keyword == "RUN"]
    assert any("install -d -o 10001 -g 10001 /data" in run for run in runs), runs
    # A DATABASE_URL for another database (here from .env): the SQLite default is for development only.
    with (project / ".env").open("a") as env:
        env.write("DATABASE_URL=postgresql://app@db/notes\n")
    assert "database      a server's URL in DATABASE_URL (" in init(project, "docker", "--force")
    assert "DATABASE_URL" not in env_of(final_stage(project))
    poetry = copy_project("poetry", tmp_path)
    init(poetry, "docker")
    assert "DATABASE_URL" not in env_of(final_stage(poetry))
    assert "/data" not in (poetry / "Dockerfile").read_text()


def test_the_projects_dockerignore_is_merged_never_dropped(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)
    own = "# ours\n./postgres-data\ntests\n!tests/fixtures/keep.json\n"
    (project / ".dockerignore").write_text(own)
    out = init(project, "docker")  # no --force needed: nothing of the project's is lost
    assert "merge      .dockerignore" in out
    merged = (project / ".dockerignore").read_text()
    assert merged.startswith(own)
    ignored = Matcher(read_patterns(merged)).ignored
    assert ignored("postgres-data/base/1") and ignored("tests/test_x.py") and not ignored("tests/fixtures/keep.json")
    assert ignored(".env") and ignored("app/.env") and ignored(".git/HEAD")
    assert "unchanged  .dockerignore" in init(project, "docker")
    forced = run_cli(["init", "docker", "--force"], cwd=project)
    assert forced.returncode == 0 and (project / ".dockerignore").read_text() == merged


def test_uv_workspace_member_is_refused_with_where_the_lock_is(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    member = workspace / "packages" / "api"
    member.mkdir(parents=True)
    (workspace / "pyproject.toml").write_text(
        '[project]\nname = "ws"\nversion = "0"\n[tool.uv.workspace]\nmembers = ["packages/*"]\n'
    )
    (workspace / "uv.lock").write_text("version = 1\n")
    (member / "pyproject.toml").write_text('[project]\nname = "api"\nversion = "0"\ndependencies = ["fastapi"]\n')
    (member / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    result = run_cli(["init", "--dry-run", "docker"], cwd=member)
    assert result.returncode == 9, result.stdout + result.stderr
    assert f"member of the uv workspace at {workspace}" in result.stderr and "Traceback" not in result.stderr
    assert f"Run fastlaunch init in {workspace} and name the app: --app packages/api/" in result.stderr


def test_uv_workspace_root_installs_the_members_lock_and_puts_the_members_on_pythonpath(tmp_path: Path) -> None:
    project = copy_project("uv-workspace", tmp_path)
    out = init(project, "docker")  # with --app packages/api/api/main.py:app (projects.INIT_ARGS)
    assert "dependencies  uv workspace (uv.lock, 2 members, installs ws-api's)" in out
    builder = parse((project / "Dockerfile").read_text())
    copies = [i.value for i in builder if i.keyword == "COPY" and not i.flags][:3]
    assert copies == [
        ("pyproject.toml", "uv.lock", "./"),
        ("packages/api/pyproject.toml", "packages/api/"),
        ("packages/lib/pyproject.toml", "packages/lib/"),
    ]
    sync = next(" ".join(i.value) for i in builder if i.keyword == "RUN" and "uv sync" in " ".join(i.value))
    assert "--frozen" in sync and "--no-install-workspace --package ws-api" in sync
    env = env_of(final_stage(project))
    assert env["APP_MODULE"] == "api.main:app"
    assert env["PYTHONPATH"] == "/app/packages/api:/app/packages/lib/src"


@pytest.mark.parametrize(("target", "check"), [("kubernetes", "kubectl kustomize k8s"), ("docker", "fastlaunch lint")])
def test_the_closing_line_names_a_check_for_what_was_written(target: str, check: str, tmp_path: Path) -> None:
    out = init(copy_project("sqlite", tmp_path), target)
    closing = out.splitlines()[-1]
    assert closing.startswith(f"Check {target}: {check}"), out
    if target == "kubernetes":
        assert "fastlaunch lint" not in out  # it reads Dockerfiles only
