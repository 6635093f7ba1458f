"""The private parts of Uvicorn, uvicorn-worker and Gunicorn that fastlaunch builds on, checked when it starts.

fastlaunch runs on whatever releases of the three the app's environment holds, and several of its features
replace or extend code those releases do not export (the tested range is in pyproject.toml and checked by
``make test-compat``). Each feature below names what it assumes; a release that no longer matches turns the
feature off, so that Uvicorn's or Gunicorn's own behaviour serves instead, and logs one warning naming the
feature and the release. Nothing is lost silently, and nothing breaks the server.

The checks read the code's shape (the names a function uses, the attributes a constructor sets), which costs
microseconds: the master makes them once, before it forks, and the workers inherit the result.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger("fastlaunch")
_warned: set[str] = set()


def code_names(function: object) -> frozenset[str]:
    """The global and attribute names a function's own code uses (empty for anything but plain Python code)."""
    code = getattr(function, "__code__", None)
    return frozenset(code.co_names) if code is not None else frozenset()


def release(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} (version unknown)"


def turned_off(feature: str, package: str, changed: str, fallback: str) -> None:
    """The one warning for a feature whose assumption failed: what is off, which release, what serves instead."""
    if feature in _warned:
        return
    _warned.add(feature)
    log.warning(
        "%s is off: %s %s, which fastlaunch has not been tested with; %s. "
        "Install a release in fastlaunch's tested range (docs: Install) or report it.",
        feature,
        release(package),
        changed,
        fallback,
    )


def _missing(names: Iterable[str], present: Iterable[str]) -> list[str]:
    have = set(present)
    return [name for name in names if name not in have]


def _holds(feature: str, package: str, fallback: str, missing: list[str], where: str) -> bool:
    if not missing:
        return True
    turned_off(feature, package, f"no longer has {', '.join(missing)} in {where}", fallback)
    return False


# -- Uvicorn's httptools protocol (worker/http_protocol.py)

HEAD_LIMITS = "Request head limits (LIMIT_REQUEST_*, HEADER_TIMEOUT, idle connections) and one-write responses"
# What HttpToolsOneWriteProtocol reads, overrides and calls on Uvicorn's protocol (it runs each request itself:
# parser callbacks, cycle, keep-alive timer).
PROTOCOL_METHODS = (
    "connection_made",
    "connection_lost",
    "on_message_begin",
    "on_headers_complete",
    "send_400_response",
    "handle_websocket_upgrade",
    "timeout_keep_alive_handler",
    "_should_upgrade",
    "_unset_keepalive_if_required",
)
PROTOCOL_STATE = (
    "app",
    "app_state",
    "parser",
    "root_path",
    "limit_concurrency",
    "connections",
    "tasks",
    "pipeline",
    "expect_100_continue",
    "timeout_keep_alive",
    "timeout_keep_alive_task",
    "scope",
    "headers",
    "cycle",
    "server_state",
)
# What OneWriteCycle (worker/http_cycle.py) sets for Uvicorn's request cycle, whose send it calls for streams.
CYCLE_STATE = (
    "scope",
    "transport",
    "flow",
    "default_headers",
    "keep_alive",
    "chunked_encoding",
    "expected_content_length",
    "response_started",
    "response_complete",
    "waiting_for_100_continue",
    "message_event",
    "on_response",
    "disconnected",
)
EXPORTS = ("HEADER_RE", "HEADER_VALUE_RE", "STATUS_LINE", "HttpToolsProtocol", "RequestResponseCycle")


def httptools_importable() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def httptools_protocol_usable() -> bool:
    """Whether the worker may serve with HttpToolsOneWriteProtocol. False, silently, where httptools itself is
    missing (Uvicorn then picks h11, as it would anyway); False with a warning where Uvicorn's module changed."""
    if not httptools_importable():
        return False
    from uvicorn.protocols.http import httptools_impl

    fallback = "Uvicorn's own HTTP protocol serves"
    if not _holds(HEAD_LIMITS, "uvicorn", fallback, _missing(EXPORTS, vars(httptools_impl)), "httptools_impl"):
        return False
    protocol = httptools_impl.HttpToolsProtocol
    missing = _missing(PROTOCOL_METHODS, dir(protocol))
    missing += _missing(PROTOCOL_STATE, code_names(protocol.__init__))
    if not _holds(HEAD_LIMITS, "uvicorn", fallback, missing, "HttpToolsProtocol"):
        return False
    cycle = httptools_impl.RequestResponseCycle
    missing = _missing(CYCLE_STATE, code_names(cycle.__init__))
    missing += _missing(("send", "send_500_response"), dir(cycle))
    return _holds(HEAD_LIMITS, "uvicorn", fallback, missing, "RequestResponseCycle")


# -- Uvicorn's h11 protocol, where httptools cannot be imported (worker/h11_protocol.py)

H11_LIMITS = "Request head limits, HEADER_TIMEOUT, idle connections and BODY_TIMEOUT under h11 (no httptools)"
# What H11LimitsProtocol reads, overrides and calls on Uvicorn's h11 protocol.
H11_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "handle_events",
    "send_400_response",
    "on_response_complete",
    "timeout_keep_alive_handler",
    "_unset_keepalive_if_required",
)
H11_STATE = ("conn", "timeout_keep_alive", "timeout_keep_alive_task", "cycle", "server_state")
# What H11LimitsProtocol reads and sets on Uvicorn's h11 request cycle.
H11_CYCLE_STATE = ("disconnected", "message_event", "response_started", "response_complete", "logger")


@functools.cache
def h11_protocol_usable() -> bool:
    """Whether the worker may serve with H11LimitsProtocol where httptools is missing: Uvicorn's h11 protocol
    parses with ``self.conn`` (an h11 Connection, whose receive buffer tells a head begun from none), and its
    request cycle holds the state the protocol works with."""
    from uvicorn.protocols.http import h11_impl

    fallback = "Uvicorn's own h11 protocol serves, without them"
    missing = _missing(("H11Protocol", "RequestResponseCycle", "h11"), vars(h11_impl))
    if not _holds(H11_LIMITS, "uvicorn", fallback, missing, "h11_impl"):
        return False
    protocol, cycle = h11_impl.H11Protocol, h11_impl.RequestResponseCycle
    missing = _missing(H11_METHODS, dir(protocol))
    missing += _missing(H11_STATE, code_names(protocol.__init__))
    missing += _missing(("flow",), code_names(protocol.connection_made))
    missing += _missing(("next_event", "send_400_response"), code_names(protocol.handle_events))
    missing += _missing(H11_CYCLE_STATE, code_names(cycle.__init__))
    if not _holds(H11_LIMITS, "uvicorn", fallback, missing, "H11Protocol"):
        return False
    import h11

    buffer = getattr(h11.Connection(h11.SERVER), "_receive_buffer", None)
    if buffer is None or not hasattr(buffer, "__len__"):
        turned_off(H11_LIMITS, "h11", "keeps what it has received elsewhere", fallback)
        return False
    return True


# -- uvicorn-worker's worker and Uvicorn's server (worker/uvicorn_worker.py, serve_loop.py, draining_server.py)

SERVE = "Graceful drain, staged start, boot reports, the loop watchdog and MAX_WORKER_MEMORY"
DRAIN = "Draining connections on shutdown"
CLEAN_EXIT = "A clean worker exit after a graceful shutdown"


@functools.cache
def worker_serve_replaceable(worker_class: type[Any]) -> bool:
    """Whether uvicorn-worker's ``run`` serves through ``_serve``, which fastlaunch's worker replaces."""
    fallback = "uvicorn-worker serves as it does by itself"
    return _holds(SERVE, "uvicorn-worker", fallback, _missing(["_serve"], code_names(worker_class.run)), "run()")


@functools.cache
def drain_supported() -> bool:
    """Whether Uvicorn's Server keeps its listeners, connections and default headers where DrainingServer looks."""
    from uvicorn.server import Server, ServerState

    fallback = "Uvicorn closes idle connections at once when a worker stops"
    missing = _missing(("servers", "started"), code_names(Server.startup))
    missing += _missing(("server_state", "force_exit"), code_names(Server.__init__))
    missing += _missing(("connections", "default_headers"), code_names(ServerState.__init__))
    return _holds(DRAIN, "uvicorn", fallback, missing, "Server")


@functools.cache
def captured_signals_clearable() -> bool:
    """Whether the signals Uvicorn re-raises after serving are in ``_captured_signals``. Releases before signal
    capture re-raise nothing, which needs nothing."""
    from uvicorn.server import Server

    capture = getattr(Server, "capture_signals", None)
    if capture is None or "_captured_signals" in code_names(Server.__init__):
        return True
    fallback = "a worker that drained gracefully dies by the signal, skipping its worker_exit hook"
    turned_off(CLEAN_EXIT, "uvicorn", "keeps the signals it re-raises elsewhere", fallback)
    return False


# -- Gunicorn's Arbiter and Application (launcher/gunicorn_app.py)

STAGING = "Staged start (one worker first, measured) and SHUTDOWN_DELAY"


@functools.cache
def arbiter_hooks(arbiter: type[Any]) -> frozenset[str]:
    """The Arbiter methods StagedArbiter may override, among those its main loop calls: ``wait_for_signals``
    (Gunicorn 24+) or ``sleep`` (22, 23), ``manage_workers``, and the signal handler ``handle_term``. Staging needs
    ``manage_workers``; without it the master starts every worker at once, as Gunicorn does."""
    loop = code_names(arbiter.run)
    hooks: set[str] = {name for name in ("wait_for_signals", "sleep", "manage_workers") if name in loop}
    if callable(getattr(arbiter, "handle_term", None)):
        hooks.add("handle_term")
    fallback = "Gunicorn starts and stops workers as it does by itself"
    missing = _missing(["manage_workers", "handle_term"], hooks)
    if not hooks & {"wait_for_signals", "sleep"}:
        missing.append("wait_for_signals")
    _holds(STAGING, "gunicorn", fallback, missing, "Arbiter.run()")
    return frozenset(hooks)
