"""REQUEST_TIMEOUT against a real `fastlaunch run`: cancelled handlers, 504s, closed connections, streams."""

from __future__ import annotations

import http.client
from pathlib import Path

import httpx
from hung import hung_app, serve
from support import free_port, wait_for_log
from websockets.sync.client import connect


def test_a_handler_waiting_forever_gets_504_and_its_finally_runs(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1", METRICS="on"):
        response = httpx.get(f"http://127.0.0.1:{port}/forever", headers={"x-request-id": "deadline-1"}, timeout=30)
        assert response.status_code == 504
        assert response.text == "Request timed out after 1s (REQUEST_TIMEOUT)\n"
        assert (app_dir / "marks/forever-cleaned-up").exists()  # cancelled, not killed: the finally ran
        # The worker is not stuck: the next request is served.
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "ok"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'http_request_timeouts_total{route="/forever"} 1.0' in metrics
        log = wait_for_log(app_dir / "server.log", '"GET /forever HTTP/1.1" 504')
    assert "Request GET /forever (route /forever) cancelled after REQUEST_TIMEOUT=1s; answered 504" in log


def test_a_handler_catching_the_cancellation_cleans_up_and_the_client_gets_504(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1"):
        response = httpx.get(f"http://127.0.0.1:{port}/catches", timeout=30)
        assert response.status_code == 504
        assert (app_dir / "marks/catches-saw-cancel").exists()


def test_a_response_started_without_its_body_has_its_connection_closed(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/half/")
        try:  # the head may or may not have left (fastlaunch holds a sized head for its body): no body follows
            response = conn.getresponse()
            body_or_error: object = response.read()
        except (http.client.HTTPException, OSError) as exc:
            body_or_error = exc
        conn.close()
        assert isinstance(body_or_error, http.client.RemoteDisconnected | http.client.IncompleteRead), body_or_error
        log = wait_for_log(app_dir / "server.log", '"GET /half/ HTTP/1.1" 504')
    assert "its response had started, so the connection is closed" in log


def test_a_stream_outlives_the_timeout(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1"):
        # Six chunks half a second apart: the stream lasts about three times the timeout.
        response = httpx.get(f"http://127.0.0.1:{port}/stream?chunks=6&every=0.5", timeout=30)
        assert response.status_code == 200
        assert response.text == "".join(f"chunk {n}\n" for n in range(6))


def test_a_websocket_outlives_the_timeout(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1"):
        with connect(f"ws://127.0.0.1:{port}/ws?wait=3", open_timeout=10) as websocket:
            assert websocket.recv(timeout=30) == "still here"
