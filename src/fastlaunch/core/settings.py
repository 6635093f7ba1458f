"""Every fastlaunch setting, declared once.

The ``SETTINGS`` table feeds the CLI options, the environment parsing, the ``[tool.fastlaunch]``
reading and the settings reference page of the docs (``fastlaunch settings --markdown``). The
environment names are the official ``uvicorn-gunicorn-fastapi`` image's, so fastlaunch is a drop-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from fastlaunch.core import validators as v
from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.secret_files import file_variable, read_secret_file
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
        "Import string of the ASGI app, e.g. `main:app`, or of a factory that returns it, `main:create_app()`; "
        "also a file or package path (`src/mypkg`).",
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
        "Script run before the server starts (a relative path is in the project directory). With a shebang it is "
        "executed; without one it is sourced by `sh` under `set -e` in a shell of its own, and what it exports "
        "reaches the app. A missing default is skipped; a missing explicit path is an error.",
        "Application",
        cli="--pre-start-path",
        image="a script with a shebang is executed instead of sourced; a missing explicit path stops the start",
    ),
    # -- database (prestart)
    S(
        "database_url",
        "DATABASE_URL",
        v.as_optional_str,
        None,
        "Database the prestart steps wait for and migrate, e.g. `postgresql+asyncpg://user:pw@db/app`; "
        "the app reads the same variable (also from the project's `.env`, below the environment, as the app "
        "does). Unset: no wait. Never shown or logged with its password. `DATABASE_URL_FILE` may name a file "
        "holding it instead (Docker secrets).",
        "Database",
        secret=True,
        image="new",
        dotenv=True,
    ),
    S(
        "db_wait_timeout",
        "DB_WAIT_TIMEOUT",
        v.whole_seconds,
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
        v.per_core,
        1.0,
        "Workers per effective CPU.",
        "Workers",
        cli="--workers-per-core",
        fix="set a number above 0 and at most 1000, e.g. 1 or 0.5",
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
        v.worker_class,
        None,  # the launcher's choice: fastlaunch's own worker (launcher/worker_class.py)
        "Gunicorn worker class (`MODULE.CLASS`). Unset: fastlaunch's worker, `fastlaunch.worker.UvicornWorker`.",
        "Workers",
        cli="--worker-class",
        doc_default="fastlaunch's worker",
        image="default is fastlaunch's subclass of uvicorn-worker's UvicornWorker (uvloop + httptools); the old "
        "`uvicorn.workers.UvicornWorker` is mapped to it, `uvicorn.workers.UvicornH11Worker` to "
        "`uvicorn_worker.UvicornH11Worker`",
    ),
    S(
        "worker_user",
        "WORKER_USER",
        v.worker_user,
        None,
        "When fastlaunch starts as root: the user (`USER` or `USER:GROUP`, names or ids) the workers run as. The "
        "master keeps root to bind ports below 1024 and run the prestart steps; the workers, which import and run "
        "the app, do not (`root` keeps them root). Ignored when started as another user.",
        "Workers",
        cli="--worker-user",
        fix="name a user that exists (useradd --system app), or unset it to keep the workers' user",
        doc_default="the master's user",
        image="new; fastlaunch's images set `root` (the original's workers' user) and have a user `app` (uid 10001)",
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
    S(
        "max_worker_memory",
        "MAX_WORKER_MEMORY",
        v.byte_size_or_auto,
        None,
        "Replace a worker whose private memory (USS: the pages only it holds, what its exit frees) passes "
        "this size, e.g. 512M: it stops accepting, finishes its requests and exits, like MAX_REQUESTS. "
        "`auto`: the worker's share of the cgroup memory limit, after the master and the plan's headroom. "
        "Unset or `off`: never.",
        "Workers",
        cli="--max-worker-memory",
        fix="use a size such as 512M or 1G, auto, or off",
        doc_default="off",
        image="new",
    ),
    S(
        "preload",
        "PRELOAD",
        v.boolean,
        False,
        "Import the app once in the master (after prestart), freeze its heap, then fork the workers, so they "
        "share its memory copy-on-write. Replacements then start by a fork, but code changes need a restart "
        "(SIGUSR2), not SIGHUP. Warns about threads, event loops and connections the app opened at import.",
        "Workers",
        cli="--preload",
        fix="use on or off",
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
        image="8000 instead of 80: a non-root process cannot bind 80; fastlaunch's images set 80",
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
        v.whole_seconds,
        5,
        "Seconds to keep an idle connection open.",
        "Network",
        cli="--keep-alive",
        fix="set a whole number of seconds",
    ),
    S(
        "header_timeout",
        "HEADER_TIMEOUT",
        v.whole_seconds,
        10,
        "Seconds a client has, from a request's first byte, to send its request line and headers; a slower "
        "one (slowloris) gets 408 and is closed. A connection that sends nothing is closed after KEEP_ALIVE "
        "(HEADER_TIMEOUT when KEEP_ALIVE is 0); 0 turns the head timeout off.",
        "Network",
        cli="--header-timeout",
        fix="set a whole number of seconds, 0 for no limit",
        image="new",
    ),
    S(
        "body_timeout",
        "BODY_TIMEOUT",
        v.whole_seconds,
        20,
        "Seconds a client has, from the end of a request's head, to send its body, plus a second for every "
        "BODY_MIN_RATE bytes received (Apache's mod_reqtimeout `body=20,MinRate=500`). A slower client gets 408 "
        "(or, once a response has started, its connection closed); so does the unread body of a request "
        "already answered. 0: no limit.",
        "Network",
        cli="--body-timeout",
        fix="set a whole number of seconds, 0 for no limit",
        image="new",
    ),
    S(
        "body_min_rate",
        "BODY_MIN_RATE",
        v.int_at_least(0),
        500,
        "Bytes per second of a request body that extend BODY_TIMEOUT by one second; 0: the whole body must "
        "arrive within BODY_TIMEOUT.",
        "Network",
        cli="--body-min-rate",
        fix="set a whole number of bytes per second, e.g. 500",
        image="new",
    ),
    S(
        "ws_max_size",
        "WS_MAX_SIZE",
        v.byte_size,
        16 * 2**20,
        "Largest WebSocket message a client may send, e.g. 1M; a larger one closes the connection (1009). Each "
        "connection may buffer messages up to this size, so it bounds a worker's memory per connection.",
        "Network",
        cli="--ws-max-size",
        fix="use a size such as 1M or 16M",
        doc_default="16M (Uvicorn's)",
        image="new",
    ),
    S(
        "ws_ping_interval",
        "WS_PING_INTERVAL",
        v.seconds,
        20.0,
        "Seconds between the server's WebSocket pings, which find dead connections; 0: no pings.",
        "Network",
        cli="--ws-ping-interval",
        fix="set a number of seconds, e.g. 20, or 0 for no pings",
        image="new",
    ),
    S(
        "ws_ping_timeout",
        "WS_PING_TIMEOUT",
        v.seconds,
        20.0,
        "Seconds a WebSocket client has to answer a ping before its connection is closed; 0: wait for ever.",
        "Network",
        cli="--ws-ping-timeout",
        fix="set a number of seconds, e.g. 20, or 0 for no limit",
        image="new",
    ),
    S(
        "ws_per_message_deflate",
        "WS_PER_MESSAGE_DEFLATE",
        v.boolean,
        True,
        "Offer WebSocket compression (permessage-deflate) to clients that ask; off saves the CPU and the "
        "compression buffers of every connection.",
        "Network",
        cli="--ws-per-message-deflate",
        fix="use on or off",
        doc_default="on",
        image="new",
    ),
    # -- lifecycle
    S(
        "timeout",
        "TIMEOUT",
        v.whole_seconds,
        120,
        "Seconds a silent worker may hang before it is killed and replaced.",
        "Lifecycle",
        cli="--timeout",
        fix="set a whole number of seconds",
    ),
    S(
        "graceful_timeout",
        "GRACEFUL_TIMEOUT",
        v.whole_seconds,
        120,
        "Seconds workers get to finish in-flight requests on shutdown or reload.",
        "Lifecycle",
        cli="--graceful-timeout",
        fix="set a whole number of seconds",
    ),
    S(
        "request_timeout",
        "REQUEST_TIMEOUT",
        v.seconds,
        0.0,
        "Seconds an HTTP request may run before it is cancelled (the app's `finally` blocks run): 504 when no "
        "response has started, else the connection is closed. Not applied to a streaming response once its "
        "head is sent, nor to WebSockets. 0: off.",
        "Lifecycle",
        cli="--request-timeout",
        fix="set a number of seconds, e.g. 30, or 0 for no limit",
        image="new",
    ),
    S(
        "loop_block_warn",
        "LOOP_BLOCK_WARN",
        v.seconds,
        1.0,
        "Seconds a worker's event loop may not run before the stack that blocks it is logged, with the "
        "request in flight. 0: off.",
        "Lifecycle",
        cli="--loop-block-warn",
        fix="set a number of seconds, e.g. 1, or 0 to turn the watchdog off",
        image="new",
    ),
    S(
        "shutdown_delay",
        "SHUTDOWN_DELAY",
        v.whole_seconds,
        0,
        "Seconds the server keeps serving after SIGTERM, with `fastlaunch.probes`' /readyz answering 503, "
        "before it drains (GRACEFUL_TIMEOUT) and exits: time for load balancers to stop sending to it.",
        "Lifecycle",
        cli="--shutdown-delay",
        fix="set a whole number of seconds, e.g. 5",
        image="new; replaces a `preStop: sleep` hook",
    ),
    S(
        "overload",
        "OVERLOAD",
        v.choice("auto", "off"),
        "off",
        "Admission control: `auto` answers `503` with `Retry-After: 1`, before the app runs, a request that has "
        "waited over 20 ms in its worker's queue (or since a trusted proxy's `X-Request-Start`) once requests "
        "have been waiting that long for 100 ms (a burst that drains sooner is served), so that above capacity "
        "the admitted requests keep their latency instead of every request timing out. Probes "
        "(`/healthz`, `/readyz`) and WebSockets are never shed. Shed requests are logged as 503s and counted "
        "in `http_requests_shed_total`.",
        "Lifecycle",
        cli="--overload",
        fix="set auto or off",
        image="new",
    ),
    S(
        "max_concurrency",
        "MAX_CONCURRENCY",
        v.int_at_least(0),
        0,
        "Most HTTP requests one worker runs at once (probes excepted); past it a request is answered `503` with "
        "`Retry-After: 1` before the app runs, whatever OVERLOAD is. For a bound the queueing delay does not "
        "see, such as a database pool. 0: no limit.",
        "Lifecycle",
        cli="--max-concurrency",
        fix="set a whole number of requests per worker, or 0 for no limit",
        image="new",
    ),
    S(
        "startup_timeout",
        "STARTUP_TIMEOUT",
        v.whole_seconds,
        60,
        "Seconds every worker may take to load the app and finish its lifespan startup; past it a warning "
        "says how many serve. `fastlaunch init kubernetes` sizes the startupProbe from it. 0: no warning.",
        "Lifecycle",
        cli="--startup-timeout",
        fix="set a whole number of seconds, e.g. 120",
        image="new",
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
    worker_class: str | None
    worker_user: str | None
    max_requests: int
    max_requests_jitter: int
    max_worker_memory: int | Literal["auto"] | None
    preload: bool
    host: str
    port: int
    bind: v.Bind | None
    forwarded_allow_ips: str
    root_path: str
    keep_alive: int
    header_timeout: int
    body_timeout: int
    body_min_rate: int
    ws_max_size: int
    ws_ping_interval: float
    ws_ping_timeout: float
    ws_per_message_deflate: bool
    timeout: int
    graceful_timeout: int
    request_timeout: float
    loop_block_warn: float
    shutdown_delay: int
    overload: str
    max_concurrency: int
    startup_timeout: int
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
        if setting.secret and setting.env and environ.get(file_variable(setting.env)):
            problem = _secret_from_file(setting.env, environ, candidates)
            if problem:
                problems.append(problem)
                continue
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


def _secret_from_file(env: str, environ: Mapping[str, str], candidates: list[tuple[object, Source]]) -> str | None:
    """Adds the value of ``env`` read from the file ``env``_FILE names (core/secret_files.py); a problem when
    both are set (which one wins would be a guess) or the file cannot be read."""
    variable, path = file_variable(env), environ[file_variable(env)]
    if environ.get(env):
        return f"{env} and {variable} are both set: unset one of them ({variable} names a file holding the value)"
    try:
        # After the command line, in the environment's place: above .env and [tool.fastlaunch].
        candidates.append((read_secret_file(path), Source("env", f"{variable} {path}")))
    except ValueError as exc:
        return f"{variable}={path} (environment): {exc}; mount the secret at that path or fix {variable}"
    return None


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
