"""fastlaunch.worker.internals: a Uvicorn, uvicorn-worker or Gunicorn release whose private code has changed turns
off the feature built on it, with one warning naming the feature and the release, and the server goes on serving
with that server's own behaviour.

The changed releases are faked by a sitecustomize module that reshapes the installed ones, in every process the
real ``fastlaunch run`` starts (master and workers), the way a new release could: a method wrapped by another, a
worker whose ``run`` no longer goes through ``_serve``."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, child_pids, free_port, running

from fastlaunch.worker import internals

APP = ASSETS / "protocol"

# Each: the change, as sitecustomize makes it.
CHANGES = {
    # A release whose request cycle sets its state up in a helper, not in __init__.
    "cycle": """
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
_init = RequestResponseCycle.__init__
def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
RequestResponseCycle.__init__ = __init__
""",
    # A release whose protocol sets its state up in a helper, not in __init__.
    "protocol": """
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
_init = HttpToolsProtocol.__init__
def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
HttpToolsProtocol.__init__ = __init__
""",
    # No httptools, and a release whose h11 protocol sets its state up in a helper, not in __init__.
    "h11": """
import sys
sys.modules["httptools"] = None  # cannot be imported
from uvicorn.protocols.http.h11_impl import H11Protocol
_init = H11Protocol.__init__
def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
H11Protocol.__init__ = __init__
""",
    # A uvicorn-worker whose run() serves through a method of another name.
    "serve": """
import asyncio
from uvicorn_worker import UvicornWorker
UvicornWorker._serve_renamed = UvicornWorker._serve
def run(self):
    return asyncio.run(UvicornWorker._serve_renamed(self))
UvicornWorker.run = run
""",
}


@dataclass
class Server:
    port: int
    worker: int
    log: Path


@pytest.fixture
def changed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CHANGES[request.param])
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "PYTHONPATH": str(site)}
    log = tmp_path / "server.log"
    with running([FASTLAUNCH, "run"], cwd=APP, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/") as proc:
        yield Server(port, child_pids(proc.pid)[0], log)


def warnings(log: Path, feature: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if f"{feature} is off" in line]


def write_calls(pid: int) -> int:
    """The write system calls the process has made (/proc/PID/io's syscw)."""
    lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith("syscw:")))


def writes_per_response(server: Server) -> float:
    """Write system calls per response on one keep-alive connection: 1 with fastlaunch's protocol, 2 with Uvicorn's."""
    count = 50
    for _ in range(2):  # the connection may have reached either worker: measure the one it reached
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        conn.getresponse().read()
        before = write_calls(server.worker)
        for _ in range(count):
            conn.request("GET", "/")
            assert conn.getresponse().read() == b'{"ok":true}'
        served = write_calls(server.worker) - before
        conn.close()
        if served:
            return served / count
    raise AssertionError("no connection reached the worker measured")


def big_header_status(server: Server) -> int:
    """The status of a request with a header field over Gunicorn's limit_request_field_size (8190 bytes)."""
    return httpx.get(f"http://127.0.0.1:{server.port}/", headers={"x-big": "a" * 9000}, timeout=10).status_code


@pytest.mark.parametrize(
    ("changed", "feature", "head_limits", "named"),
    [
        # The worker's protocol makes a cycle Uvicorn's own code must read: Uvicorn's protocol serves.
        ("cycle", internals.HEAD_LIMITS, 200, "RequestResponseCycle"),
        # Uvicorn's own protocol, which limits no header field.
        ("protocol", internals.HEAD_LIMITS, 200, "timeout_keep_alive"),
        # Without httptools, Uvicorn's own h11 protocol, which buffers a head of up to 16 KiB whatever its shape.
        ("h11", internals.H11_LIMITS, 200, "timeout_keep_alive"),
    ],
    indirect=["changed"],
)
def test_a_changed_protocol_falls_back_to_uvicorns_with_one_warning(
    changed: Server, feature: str, head_limits: int, named: str
) -> None:
    response = httpx.get(f"http://127.0.0.1:{changed.port}/", timeout=10)
    assert response.status_code == 200 and response.headers["x-request-id"]
    assert writes_per_response(changed) >= 1.9  # Uvicorn's own cycle: head and body apart
    assert big_header_status(changed) == head_limits
    (line,) = warnings(changed.log, feature)
    assert f"uvicorn {version('uvicorn')}" in line and named in line


@pytest.mark.parametrize("changed", ["serve"], indirect=True)
def test_a_worker_that_no_longer_serves_through_serve_is_left_as_it_is(changed: Server) -> None:
    # Both workers serve (the master does not wait for boot reports this worker never writes), ids and all.
    response = httpx.get(f"http://127.0.0.1:{changed.port}/", timeout=10)
    assert response.status_code == 200 and response.headers["x-request-id"]
    (line,) = warnings(changed.log, internals.SERVE)
    assert f"uvicorn-worker {version('uvicorn-worker')}" in line and "_serve" in line


def test_an_arbiter_loop_without_manage_workers_turns_staging_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ChangedArbiter:
        def run(self) -> None:
            self.wait_for_signals()
            self.maintain()

        def wait_for_signals(self) -> None: ...

        def maintain(self) -> None: ...

        def handle_term(self) -> None: ...

    monkeypatch.setattr(internals, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="fastlaunch"):
        hooks = internals.arbiter_hooks.__wrapped__(ChangedArbiter)
        internals.arbiter_hooks.__wrapped__(ChangedArbiter)
    assert hooks == {"wait_for_signals", "handle_term"}
    (record,) = caplog.records
    assert record.getMessage().startswith(f"{internals.STAGING} is off: gunicorn {version('gunicorn')}")


def test_the_installed_releases_hold_every_assumption(caplog: pytest.LogCaptureFixture) -> None:
    from gunicorn.arbiter import Arbiter
    from uvicorn_worker import UvicornWorker

    with caplog.at_level(logging.WARNING, logger="fastlaunch"):
        assert internals.httptools_protocol_usable.__wrapped__()
        assert internals.h11_protocol_usable.__wrapped__()
        assert internals.worker_serve_replaceable.__wrapped__(UvicornWorker)
        assert internals.drain_supported.__wrapped__()
        assert internals.captured_signals_clearable.__wrapped__()
        assert {"manage_workers", "handle_term"} <= internals.arbiter_hooks.__wrapped__(Arbiter)
    assert caplog.records == []
