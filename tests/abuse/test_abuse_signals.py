"""Signals to the master of a real ``fastlaunch run``: logging survives a SIGHUP reload, and SIGINT/SIGQUIT stop
the server quickly (the Signals page of the docs)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from abuse_kit import serve
from support import wait_until


def test_logging_survives_sighup(tmp_path: Path) -> None:
    with serve(tmp_path / "server.log", {"LOG_FORMAT": "json"}) as server:
        (old,) = server.workers()
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: server.workers() and old not in server.workers(), timeout=30)
        (new,) = server.workers()
        server.good()
        assert httpx.get(f"{server.url}/warn", headers={"x-request-id": "after-hup"}, timeout=10).status_code == 200
        # The app's warning is written at once, the access line by the access-log thread (every 50 ms).
        assert wait_until(lambda: '"logger": "fastlaunch.access"' in _after(server.log, "after-hup"), timeout=5)
        lines = server.log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line still JSON
    hup = next(i for i, r in enumerate(records) if r["message"] == "Handling signal: hup")
    after = records[hup:]
    messages = {(r["logger"], r["level"], r["message"]) for r in after}
    # Gunicorn's and Uvicorn's INFO lines survive the reload too.
    assert ("gunicorn.error", "INFO", f"Booting worker with pid: {new}") in messages
    assert ("uvicorn.error", "INFO", f"Started server process [{new}]") in messages
    warning = next(r for r in after if r["logger"] == "abuseapp")
    assert warning["request_id"] == "after-hup" and warning["level"] == "WARNING"
    assert any(r["logger"] == "fastlaunch.access" and r["request_id"] == "after-hup" for r in after)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_sigint_and_sigquit_stop_quickly(tmp_path: Path, sig: signal.Signals) -> None:
    # A long graceful timeout, which a quick stop must not wait out (nor end by SIGKILLing the workers).
    env = {"GRACEFUL_TIMEOUT": "60", "WEB_CONCURRENCY": "2"}
    with serve(tmp_path / "server.log", env) as server:
        slow = threading.Thread(target=_ignore_errors, args=(f"{server.url}/slow?s=30&announce=true",), daemon=True)
        slow.start()  # a request in flight, which a quick stop does not wait for
        assert wait_until(lambda: "slow started" in server.log.read_text(), timeout=30)
        started = time.monotonic()
        server.proc.send_signal(sig)
        code = server.proc.wait(timeout=30)
        took = time.monotonic() - started
        log = server.log.read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/", timeout=2)
    assert took < 10, log  # generous: about 0.2 s here, against GRACEFUL_TIMEOUT's 60 s
    assert "Perhaps out of memory" not in log
    assert code == 0, log


def _after(log: Path, request_id: str) -> str:
    """The log lines that carry ``request_id``."""
    return "\n".join(line for line in log.read_text().splitlines() if request_id in line)


def _ignore_errors(url: str) -> None:
    try:
        httpx.get(url, timeout=40)
    except httpx.TransportError:
        pass
