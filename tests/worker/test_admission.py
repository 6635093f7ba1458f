"""OVERLOAD and MAX_CONCURRENCY against a real `fastlaunch run`: shed requests get 503 + Retry-After and never
reach the app; probes and WebSockets are never shed; OVERLOAD=auto sheds past its adaptive limit on requests held
in the app; OVERLOAD=off changes nothing. No timings: the queue is made by a handler holding the event loop (0.3 s,
against a target of at most 20 ms), by a proxy's X-Request-Start, or by requests the app holds until released."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from support import ASSETS, free_port, wait_for_log
from support import serve as serve_app
from websockets.sync.client import connect

from fastlaunch.worker.concurrency_limit import INITIAL_LIMIT, PROBE_SHARE

FIRST_LIMIT = INITIAL_LIMIT // PROBE_SHARE


def overload_app(tmp_path: Path) -> Path:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(ASSETS / "overload/main.py", app_dir / "main.py")
    (app_dir / "marks").mkdir()
    return app_dir


def serve(app_dir: Path, port: int, **env: str) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The overload app with one worker, leaving its marks in app_dir/marks."""
    marks = {"MARKS_DIR": str(app_dir / "marks"), "WEB_CONCURRENCY": "1"}
    return serve_app(app_dir, port, env={**marks, **env}, ready_path="/healthz")


def started(app_dir: Path) -> set[str]:
    path = app_dir / "marks/started"
    return set(path.read_text().split()) if path.exists() else set()


def pipelined(port: int, *requests: tuple[str, str]) -> list[tuple[int, str]]:
    """(status, head) of each request, all sent in one write on one connection: the worker parses them at
    once, so the later ones wait in its queue behind the first."""
    last = len(requests) - 1
    raw = "".join(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nx-request-id: {rid}\r\n"
        + ("Connection: close\r\n" if n == last else "")
        + "\r\n"
        for n, (path, rid) in enumerate(requests)
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    heads = re.findall(rb"HTTP/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n", received, re.S)
    return [(int(status), head.decode().lower()) for status, head in heads]


def test_a_request_queued_behind_a_blocked_loop_is_shed_before_the_app_runs(tmp_path: Path) -> None:
    app_dir = overload_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, OVERLOAD="auto", METRICS="on"):
        answers = pipelined(port, ("/block", "block-1"), ("/", "queued-1"), ("/healthz", "probe-1"))
        assert [status for status, _ in answers] == [200, 503, 200], answers
        assert "retry-after: 1" in answers[1][1]
        assert "x-request-id: queued-1" in answers[1][1]
        assert started(app_dir) == {"block-1"}  # the shed request never reached the app
        # Not queued: admitted.
        assert httpx.get(f"http://127.0.0.1:{port}/", headers={"x-request-id": "fresh-1"}, timeout=10).text == "ok"
        assert started(app_dir) == {"block-1", "fresh-1"}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'http_requests_shed_total{reason="queue"} 1.0' in metrics
        wait_for_log(app_dir / "server.log", '"GET / HTTP/1.1" 503')


def test_a_request_that_waited_at_a_trusted_proxy_is_shed_and_probes_and_websockets_never_are(
    tmp_path: Path,
) -> None:
    app_dir = overload_app(tmp_path)
    port = free_port()
    long_ago = {"x-request-start": f"t={time.time() - 5:.3f}"}
    with serve(app_dir, port, OVERLOAD="auto"):
        url = f"http://127.0.0.1:{port}"
        shed = httpx.get(f"{url}/", headers={**long_ago, "x-request-id": "late-1"}, timeout=10)
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        for probe in ("/healthz", "/readyz"):
            assert httpx.get(url + probe, headers=long_ago, timeout=10).status_code == 200
        with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=long_ago, open_timeout=10) as websocket:
            websocket.send("hello")
            assert websocket.recv(timeout=10) == "hello"
        # Milliseconds (Heroku) and microseconds (New Relic) are read too.
        for value in (f"{(time.time() - 5) * 1e3:.0f}", f"t={(time.time() - 5) * 1e6:.0f}"):
            assert httpx.get(f"{url}/", headers={"x-request-start": value}, timeout=10).status_code == 503
        # A proxy clock ahead of the worker's tells nothing: admitted.
        fresh = {"x-request-start": f"t={time.time() + 60:.3f}", "x-request-id": "fresh-1"}
        assert httpx.get(f"{url}/", headers=fresh, timeout=10).status_code == 200
    assert started(app_dir) == {"fresh-1"}


def test_x_request_start_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    app_dir = overload_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, OVERLOAD="auto", FORWARDED_ALLOW_IPS="10.9.9.9"):
        headers = {"x-request-start": f"t={time.time() - 5:.3f}"}
        assert httpx.get(f"http://127.0.0.1:{port}/", headers=headers, timeout=10).status_code == 200


def test_max_concurrency_holds_and_spares_probes_and_websockets(tmp_path: Path) -> None:
    app_dir = overload_app(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(app_dir, port, MAX_CONCURRENCY="1", METRICS="on", HEALTHCHECK_PATH="/status"):
        held: list[httpx.Response] = []
        holder = threading.Thread(
            target=lambda: held.append(httpx.get(f"{url}/hold", headers={"x-request-id": "hold-1"}, timeout=60))
        )
        holder.start()
        try:
            for _ in range(300):  # until the held request is in the app (at most 30 s)
                if "hold-1" in started(app_dir):
                    break
                time.sleep(0.1)
            shed = httpx.get(f"{url}/", headers={"x-request-id": "over-1"}, timeout=10)
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            assert shed.text == "Server overloaded, retry later (OVERLOAD)\n"
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            status = httpx.get(f"{url}/status", headers={"x-request-id": "status-1"}, timeout=10)
            assert (status.status_code, status.text) == (200, "up")  # HEALTHCHECK_PATH, the image's health check
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as websocket:
                websocket.send("hello")
                assert websocket.recv(timeout=10) == "hello"
        finally:
            (app_dir / "marks/release").touch()
            holder.join(timeout=60)
        assert held[0].text == "held"
        assert httpx.get(f"{url}/", headers={"x-request-id": "after-1"}, timeout=10).text == "ok"
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'http_requests_shed_total{reason="concurrency"} 1.0' in metrics
    assert started(app_dir) == {"hold-1", "status-1", "after-1"}
    assert '"GET / HTTP/1.1" 503' in (app_dir / "server.log").read_text()


def test_overload_off_changes_nothing(tmp_path: Path) -> None:
    app_dir = overload_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, OVERLOAD="off", METRICS="on"):
        answers = pipelined(port, ("/block", "block-1"), ("/", "queued-1"))
        assert [status for status, _ in answers] == [200, 200], answers
        headers = {"x-request-start": f"t={time.time() - 5:.3f}", "x-request-id": "late-1"}
        assert httpx.get(f"http://127.0.0.1:{port}/", headers=headers, timeout=10).status_code == 200
        assert "http_requests_shed" not in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert started(app_dir) == {"block-1", "queued-1", "late-1"}


def test_overload_auto_sheds_past_its_limit_on_the_requests_in_the_app(tmp_path: Path) -> None:
    """A pool-like wait: requests held inside the app, which the queueing delay cannot see, fill the adaptive
    limit (worker/concurrency_limit.py: a quarter of 16 per worker while its first probe measures the app); the
    next waits for a place, up to its queue target (20 ms before anything is learnt), and is shed."""
    app_dir = overload_app(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(app_dir, port, OVERLOAD="auto", METRICS="on"):
        held: list[httpx.Response] = []

        def hold(n: int) -> None:
            held.append(httpx.get(f"{url}/hold", headers={"x-request-id": f"hold-{n}"}, timeout=60))

        holders = [threading.Thread(target=hold, args=(n,)) for n in range(FIRST_LIMIT)]
        for holder in holders:
            holder.start()
        try:
            for _ in range(300):  # until every held request is in the app (at most 30 s)
                if len(started(app_dir)) == FIRST_LIMIT:
                    break
                time.sleep(0.1)
            shed = httpx.get(f"{url}/", headers={"x-request-id": "over-1"}, timeout=10)
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            (app_dir / "marks/release").touch()
            for holder in holders:
                holder.join(timeout=60)
        assert [response.text for response in held] == ["held"] * FIRST_LIMIT
        assert httpx.get(f"{url}/", headers={"x-request-id": "after-1"}, timeout=10).text == "ok"
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'http_requests_shed_total{reason="limit"} 1.0' in metrics
    assert "over-1" not in started(app_dir)
    assert "after-1" in started(app_dir)
    assert '"GET / HTTP/1.1" 503' in (app_dir / "server.log").read_text()
