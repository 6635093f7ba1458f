"""Every fastlaunch setting, declared once: the serving sections here (network, lifecycle, logging, metrics),
the first ones in ``core/settings_workers.py``, and ``SETTINGS``, the table read off them.

The table feeds the CLI options, the environment parsing, the ``[tool.fastlaunch]`` reading and the settings
reference page of the docs (``fastlaunch settings --markdown``). The environment names are the official
``uvicorn-gunicorn-fastapi`` image's, so fastlaunch is a drop-in.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastlaunch.core import validators as v
from fastlaunch.core.setting import Setting, setting, settings_of
from fastlaunch.core.settings_workers import WorkerSettings


@dataclass(frozen=True, kw_only=True)
class Settings(WorkerSettings):
    """Validated values, one attribute per setting (``load_settings`` applies the sources over the defaults);
    ``sources`` records where each value came from."""

    # -- network
    host: str = setting(
        env="HOST",
        parse=v.host,
        default="0.0.0.0",
        help="Address to listen on.",
        section="Network",
        cli="--host",
    )
    port: int = setting(
        env="PORT",
        parse=v.port,
        default=8000,
        help="Port to listen on.",
        section="Network",
        cli="--port",
        fix="set a port from 1 to 65535",
        image="8000 instead of 80: a non-root process cannot bind 80; fastlaunch's images set 80",
    )
    bind: v.Bind | None = setting(
        env="BIND",
        parse=v.bind,
        default=None,
        help="Full listening address; wins over HOST and PORT.",
        section="Network",
        cli="--bind",
        fix="use HOST:PORT, [IPv6]:PORT or unix:/path",
        doc_default="HOST:PORT",
    )
    forwarded_allow_ips: str = setting(
        env="FORWARDED_ALLOW_IPS",
        parse=v.as_str,
        default="127.0.0.1,::1",
        help="Proxies trusted to set X-Forwarded-For/-Proto (comma-separated IPs or CIDRs, `*` for any).",
        section="Network",
        cli="--forwarded-allow-ips",
        image="new",
    )
    root_path: str = setting(
        env="ROOT_PATH",
        parse=v.as_str,
        default="",
        help="ASGI root_path, for an app served under a path prefix.",
        section="Network",
        cli="--root-path",
        image="new",
    )
    keep_alive: int = setting(
        env="KEEP_ALIVE",
        parse=v.whole_seconds,
        default=5,
        help="Seconds to keep an idle connection open.",
        section="Network",
        cli="--keep-alive",
        fix="set a whole number of seconds",
    )
    header_timeout: int = setting(
        env="HEADER_TIMEOUT",
        parse=v.whole_seconds,
        default=10,
        help="Seconds a client has, from a request's first byte, to send its request line and headers; a slower "
        "one (slowloris) gets 408 and is closed. A connection that sends nothing is closed after KEEP_ALIVE "
        "(HEADER_TIMEOUT when KEEP_ALIVE is 0); 0 turns the head timeout off.",
        section="Network",
        cli="--header-timeout",
        fix="set a whole number of seconds, 0 for no limit",
        image="new",
    )
    body_timeout: int = setting(
        env="BODY_TIMEOUT",
        parse=v.whole_seconds,
        default=20,
        help="Seconds a client has, from the end of a request's head, to send its body, plus a second for every "
        "BODY_MIN_RATE bytes received (Apache's mod_reqtimeout `body=20,MinRate=500`). A slower client gets 408 "
        "(or, once a response has started, its connection closed); so does the unread body of a request "
        "already answered. 0: no limit.",
        section="Network",
        cli="--body-timeout",
        fix="set a whole number of seconds, 0 for no limit",
        image="new",
    )
    body_min_rate: int = setting(
        env="BODY_MIN_RATE",
        parse=v.int_at_least(0),
        default=500,
        help="Bytes per second of a request body that extend BODY_TIMEOUT by one second; 0: the whole body must "
        "arrive within BODY_TIMEOUT.",
        section="Network",
        cli="--body-min-rate",
        fix="set a whole number of bytes per second, e.g. 500",
        image="new",
    )
    ws_max_size: int = setting(
        env="WS_MAX_SIZE",
        parse=v.byte_size,
        default=16 * 2**20,
        help="Largest WebSocket message a client may send, e.g. 1M; a larger one closes the connection (1009). Each "
        "connection may buffer messages up to this size, so it bounds a worker's memory per connection.",
        section="Network",
        cli="--ws-max-size",
        fix="use a size such as 1M or 16M",
        doc_default="16M (Uvicorn's)",
        image="new",
    )
    ws_ping_interval: float = setting(
        env="WS_PING_INTERVAL",
        parse=v.seconds,
        default=20.0,
        help="Seconds between the server's WebSocket pings, which find dead connections; 0: no pings.",
        section="Network",
        cli="--ws-ping-interval",
        fix="set a number of seconds, e.g. 20, or 0 for no pings",
        image="new",
    )
    ws_ping_timeout: float = setting(
        env="WS_PING_TIMEOUT",
        parse=v.seconds,
        default=20.0,
        help="Seconds a WebSocket client has to answer a ping before its connection is closed; 0: wait for ever.",
        section="Network",
        cli="--ws-ping-timeout",
        fix="set a number of seconds, e.g. 20, or 0 for no limit",
        image="new",
    )
    ws_per_message_deflate: bool = setting(
        env="WS_PER_MESSAGE_DEFLATE",
        parse=v.boolean,
        default=True,
        help="Offer WebSocket compression (permessage-deflate) to clients that ask; off saves the CPU and the "
        "compression buffers of every connection.",
        section="Network",
        cli="--ws-per-message-deflate",
        fix="use on or off",
        doc_default="on",
        image="new",
    )
    # -- lifecycle
    timeout: int = setting(
        env="TIMEOUT",
        parse=v.whole_seconds,
        default=120,
        help="Seconds a silent worker may hang before it is killed and replaced.",
        section="Lifecycle",
        cli="--timeout",
        fix="set a whole number of seconds",
    )
    graceful_timeout: int = setting(
        env="GRACEFUL_TIMEOUT",
        parse=v.whole_seconds,
        default=120,
        help="Seconds workers get to finish in-flight requests on shutdown or reload.",
        section="Lifecycle",
        cli="--graceful-timeout",
        fix="set a whole number of seconds",
    )
    request_timeout: float = setting(
        env="REQUEST_TIMEOUT",
        parse=v.seconds,
        default=0.0,
        help="Seconds an HTTP request may run before it is cancelled (the app's `finally` blocks run): 504 when no "
        "response has started, else the connection is closed. Not applied to a streaming response once its "
        "head is sent, nor to WebSockets. 0: off.",
        section="Lifecycle",
        cli="--request-timeout",
        fix="set a number of seconds, e.g. 30, or 0 for no limit",
        image="new",
    )
    loop_block_warn: float = setting(
        env="LOOP_BLOCK_WARN",
        parse=v.seconds,
        default=1.0,
        help="Seconds a worker's event loop may not run before the stack that blocks it is logged, with the "
        "request in flight. 0: off.",
        section="Lifecycle",
        cli="--loop-block-warn",
        fix="set a number of seconds, e.g. 1, or 0 to turn the watchdog off",
        image="new",
    )
    shutdown_delay: int = setting(
        env="SHUTDOWN_DELAY",
        parse=v.whole_seconds,
        default=0,
        help="Seconds the server keeps serving after SIGTERM, with `fastlaunch.probes`' /readyz answering 503, "
        "before it drains (GRACEFUL_TIMEOUT) and exits: time for load balancers to stop sending to it.",
        section="Lifecycle",
        cli="--shutdown-delay",
        fix="set a whole number of seconds, e.g. 5",
        image="new; replaces a `preStop: sleep` hook",
    )
    overload: str = setting(
        env="OVERLOAD",
        parse=v.choice("auto", "off"),
        default="off",
        help="Admission control: `auto` answers `503` with `Retry-After: 1`, before the app runs, a request that "
        "would wait too long, so that above capacity the admitted requests keep their latency instead of every "
        "request timing out. Two queues are watched: before the app, a request that waited in its worker's queue "
        "(or since a trusted proxy's `X-Request-Start`) over twice the app's usual latency (2 to 20 ms) is shed "
        "once requests have been waiting that long for 100 ms (a burst that drains sooner is served); inside the "
        "app (a database pool), an adaptive limit on the requests in the app, which shrinks while their latency "
        "rises over its usual level and grows back while it does not (2 to 500 per worker, or up to "
        "MAX_CONCURRENCY); that usual level is measured again every few seconds, by letting in a quarter of the "
        "limit for a few requests, when the load does not confirm it. A request that finds the app at its limit "
        "waits for a place up to the same target from its arrival (up to four times as many wait as the limit "
        "lets in; past that it is shed at once): oldest first, newest first once more wait than the app has "
        "places, so the admitted do not all wait the whole target. Probes (`/healthz`, `/readyz`, "
        "HEALTHCHECK_PATH) and WebSockets are never shed. Shed requests are logged as 503s and counted in "
        "`http_requests_shed_total`.",
        section="Lifecycle",
        cli="--overload",
        fix="set auto or off",
        image="new",
    )
    max_concurrency: int = setting(
        env="MAX_CONCURRENCY",
        parse=v.int_at_least(0),
        default=0,
        help="Most HTTP requests one worker runs at once (probes excepted); past it a request is answered `503` with "
        "`Retry-After: 1` before the app runs, whatever OVERLOAD is; under OVERLOAD=auto it also caps the adaptive "
        "limit. A fixed bound for a known pool, such as a database pool's size. 0: no limit.",
        section="Lifecycle",
        cli="--max-concurrency",
        fix="set a whole number of requests per worker, or 0 for no limit",
        image="new",
    )
    healthcheck_path: str | None = setting(
        env="HEALTHCHECK_PATH",
        parse=v.url_path,
        default=None,
        help="The path a health check asks (the drop-in image's `HEALTHCHECK` asks it, `/` when unset): admission "
        "control (OVERLOAD, MAX_CONCURRENCY) never sheds it, as it never sheds `/healthz` and `/readyz`, so a "
        "busy server is not reported unhealthy and restarted.",
        section="Lifecycle",
        cli="--healthcheck-path",
        fix="set a path starting with /, e.g. /health",
        image="new; the image's HEALTHCHECK reads it",
    )
    startup_timeout: int = setting(
        env="STARTUP_TIMEOUT",
        parse=v.whole_seconds,
        default=60,
        help="Seconds every worker may take to load the app and finish its lifespan startup; past it a warning "
        "says how many serve. `fastlaunch init kubernetes` sizes the startupProbe from it. 0: no warning.",
        section="Lifecycle",
        cli="--startup-timeout",
        fix="set a whole number of seconds, e.g. 120",
        image="new",
    )
    gunicorn_conf: str | None = setting(
        env="GUNICORN_CONF",
        parse=v.as_optional_str,
        default=None,
        help="A Gunicorn config file applied on top of these settings.",
        section="Lifecycle",
        cli="--gunicorn-conf",
        doc_default="gunicorn_conf.py if present",
        image="same; looked up in the project directory instead of /app",
    )
    gunicorn_cmd_args: str = setting(
        env="GUNICORN_CMD_ARGS",
        parse=v.as_str,
        default="",
        help="Gunicorn command-line arguments; applied last, so they win.",
        section="Lifecycle",
    )
    # -- logging
    log_level: str = setting(
        env="LOG_LEVEL",
        parse=v.choice(*v.LOG_LEVELS),
        default="info",
        help="Log level.",
        section="Logging",
        cli="--log-level",
        fix=f"use one of {', '.join(v.LOG_LEVELS)}",
    )
    access_log: str | None = setting(
        env="ACCESS_LOG",
        parse=v.as_optional_str,
        default="-",
        help="Access log destination (`-` is stdout); empty turns the access log off.",
        section="Logging",
        cli="--access-log",
        empty_is_unset=False,
        image="same; off also skips formatting the line",
    )
    error_log: str | None = setting(
        env="ERROR_LOG",
        parse=v.as_optional_str,
        default="-",
        help="Error log destination (`-` is stderr).",
        section="Logging",
        cli="--error-log",
        empty_is_unset=False,
    )
    log_format: str = setting(
        env="LOG_FORMAT",
        parse=v.choice("text", "json"),
        default="text",
        help="`text`: lines for people; `json`: one JSON object per line from every logger (Gunicorn, Uvicorn, "
        "fastlaunch, the app), with the request id on lines logged while handling a request.",
        section="Logging",
        cli="--log-format",
        fix="use text or json",
        image="new",
    )
    # -- metrics
    metrics: bool = setting(
        env="METRICS",
        parse=v.boolean,
        default=False,
        help="Prometheus metrics at `/metrics`, summed over all workers. Needs `pip install 'fastlaunch[metrics]'`.",
        section="Metrics",
        cli="--metrics",
        fix="use on or off",
        doc_default="off",
        image="new",
    )
    metrics_port: int | None = setting(
        env="METRICS_PORT",
        parse=v.port,
        default=None,
        help="Serve `/metrics` on this port (same host) instead of the app's port, so it need not be public.",
        section="Metrics",
        cli="--metrics-port",
        fix="set a port from 1 to 65535, different from PORT",
        doc_default="the app's port",
        image="new",
    )

    @property
    def address(self) -> v.Bind:
        """The listening address: BIND, else HOST:PORT."""
        return self.bind or v.Bind("tcp", host=self.host, port=self.port)


SETTINGS: tuple[Setting, ...] = settings_of(Settings)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
