"""fastlaunch.worker.uvicorn_config: the launcher's worker options and Gunicorn's settings on Uvicorn's Config, read
back from a real Config as uvicorn-worker builds it."""

from __future__ import annotations

from typing import Any

from gunicorn.config import Config as GunicornConfig
from uvicorn.config import Config

from fastlaunch.worker.options import WorkerOptions
from fastlaunch.worker.protocol_choice import HTTP
from fastlaunch.worker.uvicorn_config import CONFIG_KWARGS, apply_options, options_of


def uvicorn_config(**kwargs: Any) -> Config:
    return Config(app=None, **{**CONFIG_KWARGS, **kwargs})  # type: ignore[arg-type]


def test_the_options_reach_uvicorns_config() -> None:
    cfg = GunicornConfig()
    cfg.set("graceful_timeout", 11)
    cfg.set("limit_request_line", 1234)
    options = WorkerOptions(root_path="/api", ws_max_size=1000, ws_ping_interval=0, header_timeout=3)
    config = uvicorn_config(proxy_headers=True, forwarded_allow_ips="10.0.0.1")
    trusted = apply_options(config, cfg, options)
    assert config.root_path == "/api"
    assert config.timeout_graceful_shutdown == 10  # a second before Gunicorn's SIGKILL
    # The middleware applies forwarded headers itself: Uvicorn's own layer is off, the trusted proxies are handed on.
    assert (config.proxy_headers, trusted) == (False, "10.0.0.1")
    assert (config.ws_max_size, config.ws_ping_interval) == (1000, None)  # 0: off
    http: Any = config.http
    if not isinstance(HTTP, str):
        assert issubclass(http, HTTP) and http is not HTTP
        assert (http.limits.request_line, http.limits.header_timeout) == (1234, 3)


def test_no_proxy_is_trusted_without_proxy_headers() -> None:
    config = uvicorn_config(proxy_headers=False, forwarded_allow_ips="10.0.0.1")
    assert apply_options(config, GunicornConfig(), WorkerOptions()) is None


def test_another_protocol_is_left_as_chosen() -> None:
    config = uvicorn_config(http="h11")
    apply_options(config, GunicornConfig(), WorkerOptions())
    assert config.http == "h11"


def test_a_worker_started_by_another_launcher_gets_the_defaults() -> None:
    assert options_of(object()) == WorkerOptions()
    chosen = WorkerOptions(metrics=True)
    assert options_of(type("App", (), {"worker_options": chosen})()) is chosen
