"""The servers compared, as command lines. Each serves one app with the same worker count on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import HOST

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Launch:
    app: str  # import string, "module:attr"
    port: int
    workers: int
    access_log: bool


@dataclass(frozen=True)
class ServerKind:
    name: str
    label: str
    command: Callable[[Launch], list[str]]
    # False when the server cannot turn its access log off (then it always runs with it on).
    access_log_off: bool = True
    # Serves only FastAPI apps (fastapi run refuses a bare ASGI callable).
    fastapi_only: bool = False


def _fastlaunch(launch: Launch) -> list[str]:
    return [
        str(BIN / "fastlaunch"), "run", "--app", launch.app, "--workers", str(launch.workers),
        "--host", HOST, "--port", str(launch.port), "--access-log", "-" if launch.access_log else "",
    ]  # fmt: skip


def _fastlaunch_without_watchdog(launch: Launch) -> list[str]:
    # The event-loop watchdog (LOOP_BLOCK_WARN, on by default) turned off: what the watchdog costs.
    return [*_fastlaunch(launch), "--loop-block-warn", "0"]


def _fastlaunch_overload(launch: Launch) -> list[str]:
    # Admission control on (OVERLOAD=auto, off by default): what the guard costs below capacity.
    return [*_fastlaunch(launch), "--overload", "auto"]


def _gunicorn(launch: Launch) -> list[str]:
    args = [
        str(BIN / "gunicorn"), launch.app, "--worker-class", "uvicorn_worker.UvicornWorker",
        "--workers", str(launch.workers), "--bind", f"{HOST}:{launch.port}",
    ]  # fmt: skip
    return args + (["--access-logfile", "-"] if launch.access_log else [])


def _uvicorn(launch: Launch) -> list[str]:
    return [
        str(BIN / "uvicorn"), launch.app, "--workers", str(launch.workers), "--host", HOST,
        "--port", str(launch.port), "--access-log" if launch.access_log else "--no-access-log",
    ]  # fmt: skip


def _fastapi(launch: Launch) -> list[str]:
    # fastapi run has no switch for its access log: it is always on.
    return [
        str(BIN / "fastapi"), "run", "--entrypoint", launch.app, "--workers", str(launch.workers),
        "--host", HOST, "--port", str(launch.port),
    ]  # fmt: skip


def _granian(launch: Launch) -> list[str]:
    return [
        str(BIN / "granian"), "--interface", "asgi", "--workers", str(launch.workers), "--host", HOST,
        "--port", str(launch.port), "--respawn-failed-workers",
        "--access-log" if launch.access_log else "--no-access-log", launch.app,
    ]  # fmt: skip


SERVERS: dict[str, ServerKind] = {
    kind.name: kind
    for kind in (
        ServerKind("fastlaunch", "fastlaunch run", _fastlaunch),
        ServerKind("fastlaunch-nowatchdog", "fastlaunch run (watchdog off)", _fastlaunch_without_watchdog),
        ServerKind("fastlaunch-overload", "fastlaunch run (OVERLOAD=auto)", _fastlaunch_overload),
        ServerKind("gunicorn", "gunicorn + uvicorn-worker", _gunicorn),
        ServerKind("uvicorn", "uvicorn --workers", _uvicorn),
        ServerKind("fastapi", "fastapi run --workers", _fastapi, access_log_off=False, fastapi_only=True),
        ServerKind("granian", "granian --interface asgi", _granian),
    )
}
PEERS = [name for name in SERVERS if not name.startswith("fastlaunch")]


def display_command(args: list[str]) -> str:
    """A command as a reader would type it: the venv's path and the port stripped."""
    shown = [Path(args[0]).name, *args[1:]]
    return " ".join(arg if arg else '""' for arg in shown)
