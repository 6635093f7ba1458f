"""``fastlaunch run``'s one reader of options: every way ``run`` is reached reads them alike, the serving
process is the one that parsed them (no hand-off through the environment), and it carries no CLI library."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, running
from typer.testing import CliRunner

from fastlaunch.cli import commands
from fastlaunch.cli.run import RunArgs, read_run_args, run_help
from fastlaunch.core.exceptions import ExitCode, UsageError
from fastlaunch.core.settings import SETTINGS

READ = [
    ([], {}, True),
    (["--port", "9000"], {"port": "9000"}, True),
    (["--port=9000", "--host", "127.0.0.1"], {"port": "9000", "host": "127.0.0.1"}, True),
    (["--no-prestart", "--access-log", ""], {"access_log": ""}, False),
    (["--access-log="], {"access_log": ""}, True),
    (["--workers", "3", "--workers=4"], {"workers": "4"}, True),  # the last one counts
    (["--app=main:app", "--forwarded-allow-ips", "10.0.0.1,10.0.0.2", "--"], {}, True),
    (["--bind", "unix:/run/app.sock", "--access-log", "-"], {"bind": "unix:/run/app.sock", "access_log": "-"}, True),
]


@pytest.mark.parametrize(("args", "overrides", "prestart"), READ)
def test_options_are_read_in_either_form(args: list[str], overrides: dict[str, object], prestart: bool) -> None:
    if "--app=main:app" in args:
        overrides = {"app": "main:app", "forwarded_allow_ips": "10.0.0.1,10.0.0.2"}
    assert read_run_args(args) == RunArgs(overrides, prestart=prestart, help=False)


def test_every_setting_with_an_option_is_read_and_listed() -> None:
    for s in SETTINGS:
        if s.cli:
            assert read_run_args([s.cli, "x"]).overrides == {s.name: "x"}
            assert f"{s.cli} VALUE" in run_help() and f"[env: {s.env}]" in run_help()


BAD = [
    (["--wokers", "2"], "no such option --wokers (did you mean --workers?)"),
    (["--port"], "--port needs a value: --port VALUE or --port=VALUE"),
    (["--port", "--host", "h"], "--port needs a value"),
    (["extra"], "unexpected argument 'extra'"),
    (["--", "extra"], "unexpected argument 'extra'"),
    (["--no-prestart=yes"], "--no-prestart takes no value"),
]


@pytest.mark.parametrize(("args", "problem"), BAD)
def test_a_bad_command_line_is_a_usage_error(args: list[str], problem: str) -> None:
    with pytest.raises(UsageError) as info:
        read_run_args(args)
    assert problem in str(info.value) and info.value.exit_code == ExitCode.USAGE


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(UsageError) as info:
        read_run_args(["--wokers", "2", "--prot=1", "--port"])
    assert info.value.problems == [
        "no such option --wokers (did you mean --workers?)",
        "no such option --prot (did you mean --port?)",
        "--port needs a value: --port VALUE or --port=VALUE",
    ]


RUN_WAYS = {
    "console script": [FASTLAUNCH, "run"],
    "python -m": [sys.executable, "-m", "fastlaunch", "run"],
}


def _typer(args: list[str]) -> tuple[int, str]:
    """``run`` reached through the Typer CLI's entry, in this process (as the docs' help is generated)."""
    result = CliRunner().invoke(commands.app, ["run", *args], env={"COLUMNS": "120"})
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("args", [["--wokers", "2", "--port"], ["--help"]], ids=["bad", "help"])
def test_every_way_to_run_reads_the_same(args: list[str], tmp_path: Path) -> None:
    seen = {}
    for way, command in RUN_WAYS.items():
        env = {**os.environ, "COLUMNS": "120"}
        result = subprocess.run([*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        seen[way] = (result.returncode, result.stdout + result.stderr)
    seen["Typer CLI"] = _typer(args)
    assert len(set(seen.values())) == 1, seen
    code, output = seen["console script"]
    assert "Traceback" not in output
    if args == ["--help"]:
        assert code == 0 and output.startswith("Usage: fastlaunch run [OPTIONS]") and "--workers-per-core" in output
    else:
        assert code == ExitCode.USAGE and "did you mean --workers?" in output and "--port needs a value" in output
        assert "fastlaunch run --help` lists the options" in output


@pytest.mark.parametrize("way", RUN_WAYS)
def test_the_process_that_parses_serves_with_no_cli_library(way: str, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    shutil.copytree(ASSETS / "lifecycle", app_dir)
    port = free_port()
    args = [*RUN_WAYS[way], f"--port={port}", "--host", "127.0.0.1", "--workers", "1"]
    # Nothing is read from the environment but the settings: a hand-off variable would move the port.
    env = {"FASTLAUNCH_RUN_ARGS": '{"overrides": {"port": "1"}, "prestart": true}'}
    with running(
        args, cwd=app_dir, env=env, log=tmp_path / "server.log", ready_url=f"http://127.0.0.1:{port}/"
    ) as proc:
        modules = httpx.get(f"http://127.0.0.1:{port}/modules").json()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    # (click comes with Uvicorn, which imports it at its top.)
    assert modules["typer"] is False and modules["rich"] is False and modules["fastlaunch.cli.commands"] is False
    assert cmdline == [arg.encode() for arg in args] or cmdline[1:] == [arg.encode() for arg in args], cmdline
