"""Pre-start steps, run once before the server starts (and by ``fastlaunch prestart`` in an init
container or migration Job). Each step decides for itself whether it applies; a failure raises a
FastlaunchError and no server starts."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fastlaunch.core.exceptions import PrestartError
from fastlaunch.core.settings import Settings
from fastlaunch.prestart.database import wait_for_database
from fastlaunch.prestart.migrations import run_migrations
from fastlaunch.prestart.neighbours import migrating_line

log = logging.getLogger("fastlaunch")

Step = Callable[[Settings], None]


def script_command(path: Path) -> list[str]:
    """How to run the script: directly when executable, else through its shebang, else with sh."""
    if os.access(path, os.X_OK):
        return [str(path)]
    with path.open("rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    if first.startswith("#!"):
        return [*shlex.split(first[2:]), str(path)]
    return ["sh", str(path)]


def script_env() -> dict[str, str]:
    """The environment with this interpreter's bin directory first on PATH: under systemd or supervisor the
    virtualenv is not activated, yet `alembic upgrade head` in the script must find the app's alembic."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return env


def signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} ({signum})"
    except ValueError:
        return str(signum)


def run_script(settings: Settings) -> None:
    path = Path(settings.pre_start_path)
    if not path.is_absolute():
        path = settings.project_dir / path
    if not path.is_file():
        if settings.is_set("pre_start_path"):
            raise PrestartError(
                f"PRE_START_PATH={settings.pre_start_path!r} ({settings.source('pre_start_path').describe()}): "
                f"no such file {path}.",
                hint="Create the script, fix the path, or unset PRE_START_PATH.",
            )
        log.debug("No prestart script at %s; skipping", path)
        return
    command = script_command(path)
    migrating = migrating_line(path)
    if migrating and settings.migrate != "off" and (settings.project_dir / "alembic.ini").is_file():
        log.warning(
            "%s:%d runs `%s` although fastlaunch has just migrated (MIGRATE=%s, %s): a second migration, "
            "outside the lock that serialises replicas. Remove that line, or set MIGRATE=off to leave "
            "migrations to the script.",
            path,
            migrating[0],
            migrating[1],
            settings.migrate,
            settings.source("migrate").describe(),
        )
    log.info("Running prestart script %s", path)
    try:
        # Output is not captured: it streams to the launcher's stdout/stderr as the script runs.
        result = subprocess.run(command, cwd=settings.project_dir, env=script_env(), check=False)
    except OSError as exc:
        raise PrestartError(
            f"Cannot run prestart script {path}: {exc.strerror}.",
            hint="Check its shebang line, or make it executable (chmod +x).",
        ) from None
    if result.returncode < 0:
        # Killed by a signal: exit as a shell would (128+N), not 1, which means invalid configuration.
        signum = -result.returncode
        code = 128 + signum
        raise PrestartError(
            f"Prestart script {path} was killed by signal {signal_name(signum)}; the server was not started "
            f"(exit code {code}: 128 + signal number, as a shell reports it).",
            exit_code=code,
        )
    if result.returncode != 0:
        raise PrestartError(
            f"Prestart script {path} exited with code {result.returncode}; the server was not started.",
            exit_code=result.returncode,
        )


# Order matters: wait for the database, migrate, then the user's own script.
STEPS: list[Step] = [wait_for_database, run_migrations, run_script]


def run_prestart(settings: Settings) -> None:
    for step in STEPS:
        step(settings)
