"""Every fastlaunch setting, declared once.

The ``SETTINGS`` table feeds the CLI options, the environment parsing, the ``[tool.fastlaunch]``
reading and the settings reference in the README (``fastlaunch settings --markdown``). The
environment names are the official ``uvicorn-gunicorn-fastapi`` image's, so fastlaunch is a drop-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from fastlaunch.core import validators as v
from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.urls import masked_url

SourceKind = Literal["cli", "env", "dotenv", "pyproject", "default"]


class Source(NamedTuple):
    kind: SourceKind
    where: str  # "--workers", "WEB_CONCURRENCY", "/srv/app/pyproject.toml [tool.fastlaunch] workers", "default"

    def describe(self) -> str:
        kinds = {"cli": "command line", "env": "environment", "dotenv": ".env", "pyproject": "pyproject.toml"}
        return "default" if self.kind == "default" else f"{kinds[self.kind]} ({self.where})"


@dataclass(frozen=True)
class Setting:
    name: str  # attribute on Settings and key in [tool.fastlaunch]
    env: str | None
    parse: v.Parser
    default: object
    help: str
    section: str
    cli: str | None = None  # e.g. "--workers"; None: not a command-line option
    fix: str = ""  # how to correct a bad value, shown with the error
    secret: bool = False  # never printed or logged
    empty_is_unset: bool = True  # the image treated VAR="" as unset, except for the log destinations
    doc_default: str | None = None  # how the default reads in docs, where the value alone misleads
    image: str = "same"  # compatibility note against the official image
    # Also read from the project's .env, below the environment: for a value the app shares (DATABASE_URL),
    # which pydantic-settings reads from there too; prestart must wait for and lock the app's database.
    dotenv: bool = False


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # -- the application
    S(
        "app",
        "APP_MODULE",
        v.as_optional_str,
        None,
        "Import string of the ASGI app, e.g. `main:app`.",
        "Application",
        cli="--app",
        fix="use MODULE:ATTRIBUTE, e.g. main:app",
        doc_default="discovered",
        image="same; the attribute may be omitted (then `app`, `api`, or the first ASGI app)",
    ),
    S(
        "module_name",
        "MODULE_NAME",
        v.as_optional_str,
        None,
        "Module holding the app (used with VARIABLE_NAME).",
        "Application",
        doc_default="discovered",
        image="same; discovery also tries app.py, api.py, app/app.py, app/api.py",
    ),
    S(
        "variable_name",
        "VARIABLE_NAME",
        v.as_optional_str,
        None,
        "Name of the app inside MODULE_NAME.",
        "Application",
        doc_default="app, then api, then the first ASGI app",
    ),
    S(
        "pre_start_path",
        "PRE_START_PATH",
        v.as_str,
        "prestart.sh",
        "Script run before the server starts; "
        "executed (its shebang honoured). A missing default is skipped; a missing explicit path is an error.",
        "Application",
        cli="--pre-start-path",
        image="relative to the project directory instead of /app; executed instead of sourced",
    ),
    # -- database (prestart)
    S(
        "database_url",
        "DATABASE_URL",
        v.as_optional_str,
        None,
        "Database the prestart steps wait for and migrate, e.g. `postgresql+asyncpg://user:pw@db/app`; "
        "the app reads the same variable (also from the project's `.env`, below the environment, as the app "
        "does). Unset: no wait. Never shown or logged with its password.",
        "Database",
        secret=True,
        image="new",
        dotenv=True,
    ),
    S(
        "db_wait_timeout",
        "DB_WAIT_TIMEOUT",
        v.int_at_least(0),
        60,
        "Seconds prestart waits for DATABASE_URL to accept connections (backoff from 0.25 s up to 5 s "
        "between attempts) before giving up with exit code 6; 0 skips the wait.",
        "Database",
        cli="--db-wait-timeout",
        fix="set a whole number of seconds, 0 to skip the wait",
        image="new; replaces `sleep 10` in prestart.sh",
    ),
    S(
        "migrate",
        "MIGRATE",
        v.choice("auto", "on", "off"),
        "auto",
        "Run `alembic upgrade head` in prestart, under a lock so that one replica migrates: auto (when the "
        "project has alembic.ini), on (alembic.ini required), off.",
        "Database",
        cli="--migrate",
        fix="use auto, on or off",
        image="new",
    ),
    # -- workers
    S(
        "workers",
        "WEB_CONCURRENCY",
        v.int_at_least(1),
        None,
        "Number of worker processes; wins over the formula (the memory cap still applies).",
        "Workers",
        cli="--workers",
        fix="set a whole number of 1 or more, or unset it to size workers from the CPUs and memory",
        doc_default="from the plan",
    ),
    S(
        "workers_per_core",
        "WORKERS_PER_CORE",
        v.positive_float,
        1.0,
        "Workers per effective CPU.",
        "Workers",
        cli="--workers-per-core",
        fix="set a number above 0, e.g. 1 or 0.5",
        image="same, but applied to the CPUs the process may really use (affinity, cgroup quota)",
    ),
    S(
        "max_workers",
        "MAX_WORKERS",
        v.int_at_least(1),
        None,
        "Upper limit on the formula's result.",
        "Workers",
        cli="--max-workers",
        fix="set a whole number of 1 or more",
    ),
    S(
        "worker_memory",
        "WORKER_MEMORY",
        v.byte_size,
        None,
        "Memory one worker needs, e.g. 150M. Unset: measured from the first booted worker.",
        "Workers",
        cli="--worker-memory",
        fix="use a size such as 150M or 1G",
        doc_default="measured",
        image="new",
    ),
    S(
        "worker_class",
        "WORKER_CLASS",
        v.as_str,
        "fastlaunch.worker.UvicornWorker",
        "Gunicorn worker class.",
        "Workers",
        cli="--worker-class",
        image="default is fastlaunch's subclass of uvicorn-worker's UvicornWorker (uvloop + httptools)",
    ),
    S(
        "max_requests",
        "MAX_REQUESTS",
        v.int_at_least(0),
        0,
        "Restart a worker after this many requests (0: never).",
        "Workers",
        cli="--max-requests",
        fix="set a whole number of 0 or more",
        image="new",
    ),
    S(
        "max_requests_jitter",
        "MAX_REQUESTS_JITTER",
        v.int_at_least(0),
        0,
        "Random extra requests added per worker, so workers do not restart together.",
        "Workers",
        cli="--max-requests-jitter",
        fix="set a whole number of 0 or more",
        image="new",
    ),
    # -- network
    S("host", "HOST", v.host, "0.0.0.0", "Address to listen on.", "Network", cli="--host"),
    S(
        "port",
        "PORT",
        v.port,
        8000,
        "Port to listen on.",
        "Network",
        cli="--port",
        fix="set a port from 1 to 65535",
        image="8000 instead of 80: a non-root process cannot bind 80",
    ),
    S(
        "bind",
        "BIND",
        v.bind,
        None,
        "Full listening address; wins over HOST and PORT.",
        "Network",
        cli="--bind",
        fix="use HOST:PORT, [IPv6]:PORT or unix:/path",
        doc_default="HOST:PORT",
    ),
    S(
        "forwarded_allow_ips",
        "FORWARDED_ALLOW_IPS",
        v.as_str,
        "127.0.0.1,::1",
        "Proxies trusted to set X-Forwarded-For/-Proto (comma-separated IPs or CIDRs, `*` for any).",
        "Network",
        cli="--forwarded-allow-ips",
        image="new",
    ),
    S(
        "root_path",
        "ROOT_PATH",
        v.as_str,
        "",
        "ASGI root_path, for an app served under a path prefix.",
        "Network",
        cli="--root-path",
        image="new",
    ),
    S(
        "keep_alive",
        "KEEP_ALIVE",
        v.int_at_least(0),
        5,
        "Seconds to keep an idle connection open.",
        "Network",
        cli="--keep-alive",
        fix="set a whole number of seconds",
    ),
    S(
        "header_timeout",
        "HEADER_TIMEOUT",
        v.int_at_least(0),
        10,
        "Seconds a client has, from a request's first byte, to send its request line and headers; a slower "
        "one (slowloris) gets 408 and is closed. A connection that sends nothing is closed after KEEP_ALIVE "
        "(HEADER_TIMEOUT when KEEP_ALIVE is 0); 0 turns the head timeout off.",
        "Network",
        cli="--header-timeout",
        fix="set a whole number of seconds, 0 for no limit",
        image="new",
    ),
    # -- lifecycle
    S(
        "timeout",
        "TIMEOUT",
        v.int_at_least(0),
        120,
        "Seconds a silent worker may hang before it is killed and replaced.",
        "Lifecycle",
        cli="--timeout",
        fix="set a whole number of seconds",
    ),
    S(
        "graceful_timeout",
        "GRACEFUL_TIMEOUT",
        v.int_at_least(0),
        120,
        "Seconds workers get to finish in-flight requests on shutdown or reload.",
        "Lifecycle",
        cli="--graceful-timeout",
        fix="set a whole number of seconds",
    ),
    S(
        "gunicorn_conf",
        "GUNICORN_CONF",
        v.as_optional_str,
        None,
        "A Gunicorn config file applied on top of these settings.",
        "Lifecycle",
        cli="--gunicorn-conf",
        doc_default="gunicorn_conf.py if present",
        image="same; looked up in the project directory instead of /app",
    ),
    S(
        "gunicorn_cmd_args",
        "GUNICORN_CMD_ARGS",
        v.as_str,
        "",
        "Gunicorn command-line arguments; applied last, so they win.",
        "Lifecycle",
    ),
    # -- logging
    S(
        "log_level",
        "LOG_LEVEL",
        v.choice(*v.LOG_LEVELS),
        "info",
        "Log level.",
        "Logging",
        cli="--log-level",
        fix=f"use one of {', '.join(v.LOG_LEVELS)}",
    ),
    S(
        "access_log",
        "ACCESS_LOG",
        v.as_optional_str,
        "-",
        "Access log destination (`-` is stdout); empty turns the access log off.",
        "Logging",
        cli="--access-log",
        empty_is_unset=False,
        image="same; off also skips formatting the line",
    ),
    S(
        "error_log",
        "ERROR_LOG",
        v.as_optional_str,
        "-",
        "Error log destination (`-` is stderr).",
        "Logging",
        cli="--error-log",
        empty_is_unset=False,
    ),
    S(
        "log_format",
        "LOG_FORMAT",
        v.choice("text", "json"),
        "text",
        "`text`: lines for people; `json`: one JSON object per line from every logger (Gunicorn, Uvicorn, "
        "fastlaunch, the app), with the request id on lines logged while handling a request.",
        "Logging",
        cli="--log-format",
        fix="use text or json",
        image="new",
    ),
    # -- metrics
    S(
        "metrics",
        "METRICS",
        v.boolean,
        False,
        "Prometheus metrics at `/metrics`, summed over all workers. Needs `pip install 'fastlaunch[metrics]'`.",
        "Metrics",
        cli="--metrics",
        fix="use on or off",
        doc_default="off",
        image="new",
    ),
    S(
        "metrics_port",
        "METRICS_PORT",
        v.port,
        None,
        "Serve `/metrics` on this port (same host) instead of the app's port, so it need not be public.",
        "Metrics",
        cli="--metrics-port",
        fix="set a port from 1 to 65535, different from PORT",
        doc_default="the app's port",
        image="new",
    ),
)
del S

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated values, one attribute per entry of ``SETTINGS`` (whose defaults ``load_settings`` applies);
    ``sources`` records where each value came from."""

    app: str | None
    module_name: str | None
    variable_name: str | None
    pre_start_path: str
    database_url: str | None
    db_wait_timeout: int
    migrate: str
    workers: int | None
    workers_per_core: float
    max_workers: int | None
    worker_memory: int | None
    worker_class: str
    max_requests: int
    max_requests_jitter: int
    host: str
    port: int
    bind: v.Bind | None
    forwarded_allow_ips: str
    root_path: str
    keep_alive: int
    header_timeout: int
    timeout: int
    graceful_timeout: int
    gunicorn_conf: str | None
    gunicorn_cmd_args: str
    log_level: str
    access_log: str | None
    error_log: str | None
    log_format: str
    metrics: bool
    metrics_port: int | None
    project_dir: Path = field(default_factory=Path.cwd)
    sources: Mapping[str, Source] = field(default_factory=dict)

    @property
    def address(self) -> v.Bind:
        """The listening address: BIND, else HOST:PORT."""
        return self.bind or v.Bind("tcp", host=self.host, port=self.port)

    def source(self, name: str) -> Source:
        return self.sources.get(name, Source("default", "default"))

    def is_set(self, name: str) -> bool:
        return self.source(name).kind != "default"

    def display(self, name: str) -> str:
        """A value as it may be shown to a person: secrets masked."""
        value = getattr(self, name)
        if BY_NAME[name].secret and value:
            # A URL (DATABASE_URL) shows all but its password, so a person can check host and database.
            return masked_url(str(value)) if "://" in str(value) else "********"
        return "" if value is None else str(value)


def load_settings(
    *,
    cli: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    pyproject: Mapping[str, object] | None = None,
    pyproject_path: Path | None = None,
    project_dir: Path | None = None,
    dotenv: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Settings:
    """Merge the sources and validate every value, reporting all problems at once."""
    cli = cli or {}
    environ = environ or {}
    pyproject = pyproject or {}
    dotenv = dotenv or {}
    where_toml = f"{pyproject_path or 'pyproject.toml'} [tool.fastlaunch]"
    problems: list[str] = []

    unknown = sorted(set(pyproject) - set(BY_NAME))
    for key in unknown:
        problems.append(f"unknown key '{key}' in {where_toml}: valid keys are {', '.join(BY_NAME)}")

    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources: dict[str, Source] = {}
    for setting in SETTINGS:
        # Precedence: command line > environment > [tool.fastlaunch] > default.
        candidates: list[tuple[object, Source]] = []
        if cli.get(setting.name) is not None:
            candidates.append((cli[setting.name], Source("cli", setting.cli or setting.name)))
        if setting.env and setting.env in environ:
            raw = environ[setting.env]
            if raw != "" or not setting.empty_is_unset:
                candidates.append((raw, Source("env", setting.env)))
        if setting.dotenv and setting.env and dotenv.get(setting.env):
            candidates.append((dotenv[setting.env], Source("dotenv", f"{dotenv_path or '.env'} {setting.env}")))
        if setting.name in pyproject:
            candidates.append((pyproject[setting.name], Source("pyproject", f"{where_toml} {setting.name}")))
        if not candidates:
            continue
        raw_value, source = candidates[0]
        try:
            values[setting.name] = setting.parse(raw_value)
        except ValueError as exc:
            shown = "********" if setting.secret else repr(raw_value)
            label = {"cli": setting.cli, "env": setting.env, "dotenv": setting.env}.get(source.kind) or (
                f"{setting.name} in {where_toml}"
            )
            fix = f"; {setting.fix}" if setting.fix else ""
            problems.append(f"{label}={shown} ({source.describe().split(' (')[0]}): {exc}{fix}")
            continue
        sources[setting.name] = source

    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(f"Invalid configuration ({len(problems)} {noun}):", problems=problems)
    return Settings(**values, project_dir=project_dir or Path.cwd(), sources=sources)


def load_here(cli: Mapping[str, object] | None = None) -> Settings:
    """The settings for the project in the working directory: ``cli`` over the environment over its
    ``.env`` (only the settings the app shares) over its pyproject.toml's ``[tool.fastlaunch]`` over the
    defaults."""
    import os

    from fastlaunch.core.pyproject import read_tool_table

    project_dir = Path.cwd()
    table, path = read_tool_table(project_dir)
    dotenv_path = project_dir / ".env"
    dotenv: dict[str, str] = {}
    if dotenv_path.is_file():
        from dotenv import dotenv_values

        dotenv = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
    return load_settings(
        cli=cli,
        environ=os.environ,
        pyproject=table,
        pyproject_path=path,
        project_dir=project_dir,
        dotenv=dotenv,
        dotenv_path=dotenv_path,
    )
