"""The serving process: checks, prestart, then Gunicorn; nothing listens before the checks pass.

Reached from ``fastlaunch.cli.run`` with no CLI library loaded. Errors are raised, and rendered by the caller.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

from fastlaunch import __version__
from fastlaunch.core import logs
from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.secret_files import export_secret_files
from fastlaunch.core.settings import Settings, load_here


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
    from fastlaunch.launcher.bind import check_bindable
    from fastlaunch.launcher.cmd_args import bind_addresses
    from fastlaunch.launcher.discover import discover
    from fastlaunch.launcher.metrics import check_metrics
    from fastlaunch.launcher.preflight import check_log_destinations, check_worker_class, note_without_httptools
    from fastlaunch.launcher.workers import plan_for_this_process
    from fastlaunch.prestart.steps import run_prestart

    settings = load_here(overrides)
    export_secret_files(settings)  # DATABASE_URL_FILE: prestart and the app read DATABASE_URL
    check_log_destinations(settings)
    logs.configure(settings.log_level, settings.log_format, error_log=settings.error_log)
    log = logging.getLogger("fastlaunch")
    target = discover(settings)
    conf = gunicorn_conf_path(settings)
    check_worker_class(settings)
    for address in bind_addresses(settings):
        check_bindable(address, where=_bind_source(settings, address))
    check_metrics(settings)
    plan = plan_for_this_process(settings)
    log.info("fastlaunch %s serving %s (%s)", __version__, target.import_string, target.source)
    if conf:
        log.info("Gunicorn config file %s is applied on top of fastlaunch's settings", conf)
    for line in plan.warnings:
        log.warning("Worker plan: %s", line)
    note_without_httptools(settings, log)
    if prestart:
        run_prestart(settings)

    # Gunicorn parses WEB_CONCURRENCY as a number when it is imported; empty means unset to fastlaunch (and
    # to the image), so an empty value must not reach it.
    if os.environ.get("WEB_CONCURRENCY", "-").strip() == "":
        del os.environ["WEB_CONCURRENCY"]
    from fastlaunch.launcher.gunicorn_app import FastlaunchApplication

    application = FastlaunchApplication(settings, target, plan, conf)
    gc.enable()  # off while starting up (cli/entry.py)
    application.run()


def _bind_source(settings: Settings, address: object) -> str:
    if address != settings.address:
        return "GUNICORN_CMD_ARGS --bind"
    return settings.source("bind" if settings.bind else "port").describe()
