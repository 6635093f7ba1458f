"""The console script's fast path: ``fastlaunch run`` with plain options never loads the Typer CLI, and reads
those options exactly as the CLI would."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, running
from typer.testing import CliRunner

from fastlaunch.cli import commands
from fastlaunch.cli.entry import read_run_args

PLAIN = [
    [],
    ["--port", "9000"],
    ["--port=9000", "--host", "127.0.0.1"],
    ["--no-prestart", "--access-log", ""],
    ["--workers", "3", "--workers", "4"],  # the last one counts, as in click
    ["--app", "main:app", "--forwarded-allow-ips", "10.0.0.1,10.0.0.2", "--no-prestart"],
]


@pytest.mark.parametrize("args", PLAIN)
def test_plain_options_read_like_the_typer_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def handed_over(overrides: dict[str, object], *, prestart: bool) -> None:
        seen.update(overrides=overrides, prestart=prestart)
        raise SystemExit(0)

    monkeypatch.setattr(commands, "become_server", handed_over)
    result = CliRunner().invoke(commands.app, ["run", *args])
    assert result.exit_code == 0, result.output
    assert read_run_args(args) == (seen["overrides"], seen["prestart"])


@pytest.mark.parametrize(
    "args", [["--help"], ["--port"], ["--port", "--host"], ["--bogus", "1"], ["extra"], ["--port", "1", "--"]]
)
def test_anything_else_goes_to_the_typer_cli(args: list[str]) -> None:
    assert read_run_args(args) is None


@pytest.mark.parametrize("tail", [[], ["--"]], ids=["fast path", "through the Typer CLI"])
def test_workers_carry_no_cli_library_either_way(tail: list[str], tmp_path: Path) -> None:
    # "--" is valid for click but not for the fast path: the CLI parses, then execs the serving process.
    app_dir = tmp_path / "app"
    shutil.copytree(ASSETS / "lifecycle", app_dir)
    port = free_port()
    args = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *tail]
    with running(args, cwd=app_dir, log=tmp_path / "server.log", ready_url=f"http://127.0.0.1:{port}/") as proc:
        modules = httpx.get(f"http://127.0.0.1:{port}/modules").json()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    assert modules["typer"] is False and modules["rich"] is False and modules["fastlaunch.cli.commands"] is False
    # The same PID serves either way; only the CLI route replaced its program.
    assert (cmdline[1:4] == [b"-P", b"-m", b"fastlaunch"]) == bool(tail), cmdline
