"""Bad input: one readable message naming the problem and the fix, a documented exit code, no traceback,
and no server left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support import ASSETS, ROOT, free_port, run_cli

from fastlaunch.core.exceptions import ExitCode

DOCS_APP = (ASSETS / "docsapp/main.py").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(DOCS_APP)
    return tmp_path


def check(result_stderr: str, returncode: int, code: int, *fragments: str) -> None:
    assert returncode == code, result_stderr
    assert "Traceback" not in result_stderr
    assert "Booting worker" not in result_stderr and "Listening at" not in result_stderr
    for fragment in fragments:
        assert fragment in result_stderr


def fix(stderr: str) -> str:
    """The text of the error's "Fix:" line, which must be there."""
    lines = [line for line in stderr.splitlines() if line.startswith("Fix: ")]
    assert len(lines) == 1, stderr
    return lines[0].removeprefix("Fix: ")


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"WEB_CONCURRENCY": "abc"}, ["WEB_CONCURRENCY='abc' (environment): not a whole number", "set a whole number"]),
        ({"WEB_CONCURRENCY": "0"}, ["WEB_CONCURRENCY='0'", "must be 1 or more"]),
        ({"WEB_CONCURRENCY": "-1"}, ["WEB_CONCURRENCY='-1'", "must be 1 or more"]),
        ({"WORKERS_PER_CORE": "x"}, ["WORKERS_PER_CORE='x'", "not a number", "e.g. 1 or 0.5"]),
        ({"BIND": "127.0.0.1:port"}, ["BIND='127.0.0.1:port'", "expected HOST:PORT", "; use HOST:PORT, [IPv6]:PORT"]),
    ],
)
def test_invalid_environment(project: Path, env: dict[str, str], fragments: list[str]) -> None:
    r = run_cli(["run"], cwd=project, env=env)
    check(r.stderr, r.returncode, ExitCode.CONFIG, *fragments)


def test_several_problems_in_one_message(project: Path) -> None:
    r = run_cli(["run"], cwd=project, env={"WEB_CONCURRENCY": "abc", "WORKERS_PER_CORE": "x", "PORT": "0"})
    check(r.stderr, r.returncode, ExitCode.CONFIG, "3 problems", "WEB_CONCURRENCY", "WORKERS_PER_CORE", "PORT")


def test_unknown_module(project: Path) -> None:
    r = run_cli(["run"], cwd=project, env={"APP_MODULE": "mian:app"})
    check(r.stderr, r.returncode, ExitCode.APP_NOT_FOUND, "Could not find module 'mian'", "APP_MODULE")
    assert fix(r.stderr) == (
        "Check the spelling, run fastlaunch from the project directory, or use a path such as app/main.py:app."
    )


def test_unknown_attribute(project: Path) -> None:
    r = run_cli(["run"], cwd=project, env={"MODULE_NAME": "main", "VARIABLE_NAME": "application"})
    check(r.stderr, r.returncode, ExitCode.APP_NOT_FOUND, "has no attribute 'application'", "VARIABLE_NAME=app")


def test_port_in_use(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli(["run", "--host", "127.0.0.1", "--port", str(port)], cwd=project)
    check(r.stderr, r.returncode, ExitCode.BIND, f"Port {port} on 127.0.0.1 is already in use", "--port")


def test_missing_prestart_script(project: Path) -> None:
    # A free port: the address is checked before prestart runs.
    env = {"PRE_START_PATH": "scripts/prestart.sh", "HOST": "127.0.0.1", "PORT": str(free_port())}
    r = run_cli(["run"], cwd=project, env=env)
    check(r.stderr, r.returncode, ExitCode.PRESTART, "PRE_START_PATH='scripts/prestart.sh'", "no such file")
    assert fix(r.stderr) == "Create the script, fix the path, or unset PRE_START_PATH."


def test_failing_prestart_script_passes_its_code(project: Path) -> None:
    (project / "prestart.sh").write_text("#!/bin/sh\necho migrating\necho 'db is gone' >&2\nexit 42\n")
    r = run_cli(["run", "--host", "127.0.0.1", "--port", str(free_port())], cwd=project)
    check(r.stderr, r.returncode, 42, "exited with code 42", "db is gone", "server was not started")
    assert "migrating" in r.stdout


def test_missing_gunicorn_conf(project: Path) -> None:
    r = run_cli(["run"], cwd=project, env={"GUNICORN_CONF": "/nowhere/gunicorn_conf.py"})
    check(r.stderr, r.returncode, ExitCode.CONFIG, "GUNICORN_CONF='/nowhere/gunicorn_conf.py'", "no such file")
    assert fix(r.stderr) == "Fix the path, or unset GUNICORN_CONF to use fastlaunch's settings alone."


def test_malformed_pyproject(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.fastlaunch]\napp = "main:app\n')
    r = run_cli(["run"], cwd=project)
    check(r.stderr, r.returncode, ExitCode.CONFIG, "pyproject.toml is not valid TOML", "line 2")
    assert fix(r.stderr) == "Fix the syntax at that line (tomllib's message above), then run again."


def test_pyproject_table_with_bad_values(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.fastlaunch]\nworkers = "many"\nport = 8000\nwokers = 2\n')
    r = run_cli(["run"], cwd=project)
    check(r.stderr, r.returncode, ExitCode.CONFIG, "2 problems", "workers in", "unknown key 'wokers'")
    # Setting problems carry their fix on their own line: the valid keys, the value to set.
    assert "valid keys are app, module_name," in r.stderr and "set a whole number of 1 or more" in r.stderr


def test_pyproject_tool_fastlaunch_not_a_table(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool]\nfastlaunch = "main:app"\n')
    r = run_cli(["run"], cwd=project)
    check(r.stderr, r.returncode, ExitCode.CONFIG, "[tool.fastlaunch] must be a table")
    assert fix(r.stderr).startswith("Write it as a table")
    assert '\n[tool.fastlaunch]\napp = "main:app"\n' in r.stderr


def test_unknown_option_is_a_usage_error(project: Path) -> None:
    r = run_cli(["run", "--wokers", "2"], cwd=project)
    assert r.returncode == ExitCode.USAGE and "Traceback" not in r.stderr


EXIT_CODES_PAGE = ROOT / "docs" / "reference" / "exit-codes.md"
# What each code's row must say; a new ExitCode member fails the test until it has a row and a phrase here.
MEANINGS = {
    ExitCode.OK: "stopped normally",
    ExitCode.CONFIG: "invalid configuration",
    ExitCode.USAGE: "unknown command-line option",
    ExitCode.APP_BOOT: "the app raised",
    ExitCode.APP_NOT_FOUND: "module or attribute does not exist",
    ExitCode.BIND: "the address is in use",
    ExitCode.DATABASE: "the database never became reachable",
    ExitCode.MIGRATION: "the migration failed",
    ExitCode.PRESTART: "`PRE_START_PATH` is set but the script is missing",
    ExitCode.INIT: "`fastlaunch init` refused",
    ExitCode.LINT: "`fastlaunch lint` cannot check what it was given",
    ExitCode.WORKER_ACCESS: "the workers' user (`WORKER_USER`) was denied a file",
    ExitCode.MEMORY_CAP: "`MAX_WORKER_MEMORY` is below what the first worker holds",
}


def documented_exit_codes() -> dict[str, str]:
    """The documentation's exit code table: first column -> second column."""
    lines = EXIT_CODES_PAGE.read_text().splitlines()
    start = lines.index("# Exit codes")
    rows: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if rows and not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("code", "---"):
            assert cells[0] not in rows, f"code {cells[0]} appears twice"
            rows[cells[0]] = cells[1]
    return rows


def test_documented_exit_code_table_matches_exit_code() -> None:
    assert set(MEANINGS) == set(ExitCode)
    rows = documented_exit_codes()
    numbers = {int(code) for code in rows if code.isdigit()}
    assert numbers == {int(code) for code in ExitCode}, "the table and ExitCode list different codes"
    assert set(rows) - {str(n) for n in numbers} == {"other"}  # the prestart script's pass-through row
    for code, phrase in MEANINGS.items():
        assert phrase in rows[str(int(code))], f"{code.name}: {rows[str(int(code))]!r} lacks {phrase!r}"
    assert "passed through" in rows["other"] and "128+N" in rows["other"]


def test_run_help_shows_brackets_as_written() -> None:
    """Setting help is plain text: Rich markup must not eat `fastlaunch[metrics]` nor `[env: METRICS]`."""
    result = run_cli(["run", "--help"], cwd=ROOT, env={"COLUMNS": "300"})
    assert "pip install 'fastlaunch[metrics]'" in result.stdout and "[env: METRICS]" in result.stdout
