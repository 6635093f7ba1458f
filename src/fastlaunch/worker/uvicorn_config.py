"""fastlaunch's settings applied to the Uvicorn Config that uvicorn-worker builds from Gunicorn's.

uvicorn-worker makes the Config in the worker's constructor, from Gunicorn's settings and the worker class's
``CONFIG_KWARGS``; what Gunicorn has no setting for comes from the launcher's ``WorkerOptions``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.config import Config

from fastlaunch.worker.options import WorkerOptions
from fastlaunch.worker.protocol_choice import HTTP, limited_protocol

# "auto" picks uvloop, which uvicorn[standard] installs; HTTP is fastlaunch's protocol where it can serve
# (protocol_choice.py). access_log=False: fastlaunch's middleware writes the access log, off the request path
# (Uvicorn's own formats and writes each line inside the request). Uvicorn applies it only when its Config is built.
CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": HTTP, "access_log": False}


def options_of(app: Any) -> WorkerOptions:
    """What the launcher set on its Gunicorn application; the defaults for a worker started by another launcher."""
    options: WorkerOptions | None = getattr(app, "worker_options", None)
    return options or WorkerOptions()


def apply_options(config: Config, cfg: Any, options: WorkerOptions) -> str | list[str] | None:
    """Sets fastlaunch's settings on ``config``; returns the trusted proxies, whose forwarded headers the
    middleware applies itself (None: none trusted)."""
    config.root_path = options.root_path
    # Cancel stuck tasks cleanly just before Gunicorn's graceful timeout would SIGKILL the worker.
    config.timeout_graceful_shutdown = max(1, cfg.graceful_timeout - 1)
    # Uvicorn does not wrap the app in a second layer for forwarded headers: the middleware applies them.
    forwarded_allow_ips = config.forwarded_allow_ips if config.proxy_headers else None
    config.proxy_headers = False
    config.http = limited_protocol(config.http, cfg, options)
    _limit_websockets(config, options)
    return forwarded_allow_ips


def _limit_websockets(config: Config, options: WorkerOptions) -> None:
    # Uvicorn's protocols read these from the config for each connection; an older Uvicorn lacks the last.
    limits = {
        "ws_max_size": options.ws_max_size,
        "ws_ping_interval": options.ws_ping_interval or None,
        "ws_ping_timeout": options.ws_ping_timeout or None,
        "ws_per_message_deflate": options.ws_per_message_deflate,
    }
    for name, value in limits.items():
        if hasattr(config, name):
            setattr(config, name, value)
