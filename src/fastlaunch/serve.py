"""The serving process: checks, prestart, then Gunicorn.

``fastlaunch run`` with plain options gets here from ``fastlaunch.entry`` without any CLI library loaded.
When the Typer CLI parsed the command line instead, it replaces itself (exec: same PID, so signals and
supervisors see no difference) with ``python -m fastlaunch.serve``: the Gunicorn master and the workers it
forks never carry Typer or Rich (a few MiB in every process).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from fastlaunch import __version__, logs
from fastlaunch.error_output import rendered_errors
from fastlaunch.exceptions import ConfigError
from fastlaunch.settings import Settings, load_here

# The parsed command line, handed from the CLI process to the one that replaces it.
ARGS_ENV = "FASTLAUNCH_RUN_ARGS"


def become_server(overrides: dict[str, object], *, prestart: bool) -> NoReturn:
    os.environ[ARGS_ENV] = json.dumps({"overrides": overrides, "prestart": prestart})
    sys.stdout.flush()
    sys.stderr.flush()
    # -P: the working directory does not go first on sys.path, where a project's module could shadow ours.
    os.execv(sys.executable, [sys.executable, "-P", "-m", "fastlaunch.serve"])


def gunicorn_conf_path(settings: Settings) -> Path | None:
    if settings.gunicorn_conf:
        path = Path(settings.gunicorn_conf)
        path = path if path.is_absolute() else settings.project_dir / path
        if not path.is_file():
            raise ConfigError(
                f"GUNICORN_CONF={settings.gunicorn_conf!r} ({settings.source('gunicorn_conf').describe()}): "
                f"no such file {path}.",
                hint="Fix the path, or unset GUNICORN_CONF to use fastlaunch's settings alone.",
            )
        return path
    # Drop-in with the image, which used /app/gunicorn_conf.py when the project shipped one.
    for candidate in ("gunicorn_conf.py", "app/gunicorn_conf.py"):
        if (settings.project_dir / candidate).is_file():
            return settings.project_dir / candidate
    return None


def serve(overrides: dict[str, object], *, prestart: bool) -> None:
    """Check everything, run the prestart steps, then serve; nothing listens before the checks pass."""
    from fastlaunch.bind import check_bindable
    from fastlaunch.discover import discover
    from fastlaunch.metrics_launch import check_metrics
    from fastlaunch.prestart import run_prestart
    from fastlaunch.workers import plan_for_this_process

    settings = load_here(overrides)
    logs.configure(settings.log_level, settings.log_format, error_log=settings.error_log)
    log = logging.getLogger("fastlaunch")
    target = discover(settings)
    conf = gunicorn_conf_path(settings)
    check_bindable(settings.address, where=settings.source("bind" if settings.bind else "port").describe())
    check_metrics(settings)
    plan = plan_for_this_process(settings)
    log.info("fastlaunch %s serving %s (%s)", __version__, target.import_string, target.source)
    if conf:
        log.info("Gunicorn config file %s is applied on top of fastlaunch's settings", conf)
    for line in plan.warnings:
        log.warning("Worker plan: %s", line)
    if prestart:
        run_prestart(settings)

    from fastlaunch.gunicorn_app import FastlaunchApplication

    FastlaunchApplication(settings, target, plan, conf).run()


def serve_and_exit(overrides: dict[str, object], prestart: bool) -> NoReturn:
    with rendered_errors():
        serve(overrides, prestart=prestart)
    raise SystemExit(0)


def main() -> None:
    args = json.loads(os.environ.pop(ARGS_ENV, "{}"))
    serve_and_exit(args.get("overrides", {}), args.get("prestart", True))


if __name__ == "__main__":
    main()
