"""The one error family fastlaunch raises, and the exit code each kind maps to.

The library raises; only ``fastlaunch.cli.errors.rendered_errors`` renders (one message, no traceback) and exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CONFIG = 1  # invalid setting, malformed pyproject table, missing GUNICORN_CONF
    FINDINGS = 1  # fastlaunch lint or check found a problem in what it checked (1, as linters exit)
    USAGE = 2  # unknown command-line option, or a bad value of one (click's own code)
    APP_BOOT = 3  # the app raised or sys.exit("...")-ed while a worker loaded or started it (WORKER_BOOT_ERROR)
    APP_NOT_FOUND = 4  # module or attribute not found (gunicorn's APP_LOAD_ERROR)
    BIND = 5  # address in use, or not allowed to bind
    DATABASE = 6  # the database never became reachable within the wait budget
    MIGRATION = 7  # alembic upgrade failed
    PRESTART = 8  # PRE_START_PATH set but missing, or not runnable
    INIT = 9  # fastlaunch init cannot write this project's files: one changed, a render failed, no image possible
    LINT = 10  # fastlaunch lint could not read its input (no Dockerfile, a file Docker refuses, no parser)
    WORKER_ACCESS = 11  # WORKER_USER's user cannot read the app, or a worker failed to boot denied a file
    MEMORY_CAP = 12  # MAX_WORKER_MEMORY below what a worker holds once it has loaded the app


class FastlaunchError(Exception):
    """Base class. ``problems`` lists every problem found, so users fix all of them in one go."""

    exit_code: int = int(ExitCode.CONFIG)

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.hint = hint

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class UsageError(FastlaunchError):
    """A command line the command does not take (an unknown option, a missing value)."""

    exit_code = int(ExitCode.USAGE)


class ConfigError(FastlaunchError):
    exit_code = int(ExitCode.CONFIG)


class AppDiscoveryError(FastlaunchError):
    exit_code = int(ExitCode.APP_NOT_FOUND)


class AppLoadError(FastlaunchError):
    """The app's own module cannot load (syntax error, an import of a module that is not installed): found by
    the master before anything listens, exit code as a worker that failed to boot."""

    exit_code = int(ExitCode.APP_BOOT)


class BindError(FastlaunchError):
    exit_code = int(ExitCode.BIND)


class DatabaseError(FastlaunchError):
    exit_code = int(ExitCode.DATABASE)


class MigrationError(FastlaunchError):
    exit_code = int(ExitCode.MIGRATION)


class PrestartError(FastlaunchError):
    """A prestart step failed. A failing script passes its own exit code through."""

    exit_code = int(ExitCode.PRESTART)

    def __init__(self, message: str, *, exit_code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if exit_code is not None:
            self.exit_code = exit_code


class InitError(FastlaunchError):
    """``fastlaunch init`` cannot write the files: it would overwrite a changed one, a template or the resource
    sizing failed, or the project is one it cannot build an image for."""

    exit_code = int(ExitCode.INIT)


class LintError(FastlaunchError):
    """What lint was given cannot be checked (its findings exit 1; this is not a finding)."""

    exit_code = int(ExitCode.LINT)


class WorkerAccessError(FastlaunchError):
    exit_code = int(ExitCode.WORKER_ACCESS)


class ServerExit(FastlaunchError):
    """Gunicorn halted with a non-zero status; the reason was already logged by the server."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
