"""Pre-start steps, run once before the server starts (and by ``fastlaunch prestart`` in an init
container or migration Job). Each step decides for itself whether it applies; a failure raises a
FastlaunchError and no server starts."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from fastlaunch.core.alembic_ini import find_alembic_ini
from fastlaunch.core.exceptions import PrestartError
from fastlaunch.core.settings import SETTINGS, Settings
from fastlaunch.core.urls import backend
from fastlaunch.prestart.child import Step, run_in_child
from fastlaunch.prestart.overlaps import migrating_line
from fastlaunch.prestart.script_process import run_script_process, signal_name

log = logging.getLogger("fastlaunch")


# A script without a shebang is sourced, as the original image's start.sh did (`. prestart.sh` under `set -e`), but
# in a shell of its own: on its way out (an `exit` in the script too) that shell writes what it exports, which the
# launcher then carries over to the server and the app.
SOURCE = 'set -e; __fastlaunch_env=$1; shift; trap \'export -p > "$__fastlaunch_env"\' EXIT; . "$0"'
# Variables the shell sets itself; and only a shell variable name can be exported, or unset, by the script.
SHELL_OWN = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def script_command(path: Path, exports: Path) -> list[str]:
    """How to run the script: through its shebang (directly when executable), a binary directly, else sourced by
    sh with its exports written to ``exports``."""
    with path.open("rb") as f:
        head = f.readline()
    if head.startswith(b"#!"):
        if os.access(path, os.X_OK):
            return [str(path)]
        return [*shlex.split(head[2:].decode("utf-8", "replace").strip()), str(path)]
    if head.startswith(b"\x7fELF") and os.access(path, os.X_OK):
        return [str(path)]
    return ["sh", "-c", SOURCE, str(path.absolute()), str(exports)]


def exported(text: str) -> dict[str, str]:
    """The variables in the output of `export -p` (a name exported without a value has none yet: left out)."""
    values: dict[str, str] = {}
    for token in shlex.split(text):
        name, equals, value = token.partition("=")
        if equals and SHELL_NAME.fullmatch(name):
            values[name] = value
    return values


def carry_over(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Applies to this process's environment (inherited by Gunicorn and every worker) what the sourced script
    exported, changed or unset; returns those names."""
    changed = [n for n, value in after.items() if before.get(n) != value and n not in SHELL_OWN]
    unset = [n for n in before if n not in after and SHELL_NAME.fullmatch(n) and n not in SHELL_OWN]
    for name in changed:
        os.environ[name] = after[name]
    for name in unset:
        os.environ.pop(name, None)
    return sorted(changed + unset)


def script_env() -> dict[str, str]:
    """The environment with this interpreter's bin directory first on PATH: under systemd or supervisor the
    virtualenv is not activated, yet `alembic upgrade head` in the script must find the app's alembic."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return env


def report_carried(path: Path, names: list[str]) -> None:
    if not names:
        return
    log.info("Prestart script %s exported %s: passed on to the server and the app", path, ", ".join(names))
    late = sorted(set(names) & {s.env for s in SETTINGS if s.env})
    if late:
        log.warning(
            "%s from the prestart script reach the app, but fastlaunch read its own settings before the script "
            "ran; set them in the container's environment (ENV, docker run -e) for fastlaunch to use them",
            ", ".join(late),
        )


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
    migrating = migrating_line(path)
    if migrating and settings.migrate != "off" and find_alembic_ini(settings.project_dir) is not None:
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
    env = script_env()
    handle, exports_name = tempfile.mkstemp(prefix="fastlaunch-prestart-env-")
    os.close(handle)
    exports = Path(exports_name)
    try:
        command = script_command(path, exports)
        # Output is not captured: it streams to the launcher's stdout/stderr as the script runs.
        returncode = run_script_process(
            command, cwd=settings.project_dir, env=env, path=path, grace=settings.graceful_timeout
        )
        after = exported(exports.read_text()) if command[:2] == ["sh", "-c"] and returncode == 0 else None
    except OSError as exc:
        raise PrestartError(
            f"Cannot run prestart script {path}: {exc.strerror}.",
            hint="Check its shebang line, or make it executable (chmod +x).",
        ) from None
    finally:
        exports.unlink(missing_ok=True)
    if after is not None:
        report_carried(path, carry_over(env, after))
    if returncode < 0:
        # Killed by a signal: exit as a shell would (128+N), not 1, which means invalid configuration.
        signum = -returncode
        code = 128 + signum
        raise PrestartError(
            f"Prestart script {path} was killed by signal {signal_name(signum)}; the server was not started "
            f"(exit code {code}: 128 + signal number, as a shell reports it).",
            exit_code=code,
        )
    if returncode != 0:
        raise PrestartError(
            f"Prestart script {path} exited with code {returncode}; the server was not started.",
            exit_code=returncode,
        )


def database_steps(settings: Settings) -> None:
    """Wait for the database, then migrate. Imported here, in the child: these modules load asyncio,
    SQLAlchemy and the driver."""
    from fastlaunch.prestart.database import wait_for_database
    from fastlaunch.prestart.migrations import run_migrations

    wait_for_database(settings)
    run_migrations(settings)


def has_database_work(settings: Settings) -> bool:
    """Whether the database steps may have anything to do: a database to wait for, or migrations to look at.
    Decided here, from the settings and one file, so that an app without either never pays for the child
    (about 70 ms of startup: a fork, and the imports the steps need)."""
    url = settings.database_url
    waits = url is not None and url != "" and backend(url) != "sqlite" and settings.db_wait_timeout != 0
    migrates = settings.migrate == "on" or (
        settings.migrate != "off" and find_alembic_ini(settings.project_dir) is not None
    )
    return waits or migrates


def run_database_steps(settings: Settings) -> None:
    """The database steps in a child process: the caller (the Gunicorn master, whose workers inherit all it
    holds) never imports SQLAlchemy, Alembic, a driver or asyncio."""
    if not has_database_work(settings):
        log.debug("No database to wait for and no migrations to run: no database steps")
        return
    run_in_child(database_steps, settings, "database prestart steps")


# Order matters: wait for the database, migrate, then the user's own script.
STEPS: list[Step] = [run_database_steps, run_script]


def run_prestart(settings: Settings) -> None:
    for step in STEPS:
        step(settings)
