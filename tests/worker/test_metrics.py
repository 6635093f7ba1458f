"""METRICS=on: Prometheus metrics summed over every worker of a real `fastlaunch run`, through worker deaths."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import ASSETS, FASTLAUNCH, child_pids, free_port, running, wait_for_http

APP = ASSETS / "obsapp"


def wait_for_booted_workers(log: Path, count: int) -> None:
    """Until `count` workers have started the app (the first answers before the others have booted)."""
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count("Application startup complete") < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} workers booted:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port)]
    full_env = {"METRICS": "on", "PYTHONDONTWRITEBYTECODE": "1", **env}
    ready = f"http://127.0.0.1:{env['METRICS_PORT']}/metrics" if "METRICS_PORT" in env else f"{base}/metrics"
    with running(command, cwd=APP, env=full_env, log=tmp_path / "server.log", ready_url=ready) as proc:
        if "METRICS_PORT" in env:  # the exporter starts before Gunicorn binds the app's port: wait for it too
            wait_for_http(f"{base}/", proc=proc)
        yield base, proc


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def total(values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbl), v in values.items() if n == name and wanted <= lbl)


def get_pid(url: str) -> int:
    response = httpx.get(url, headers={"Connection": "close"}, timeout=30)
    assert response.status_code == 200
    return int(response.json()["pid"])


def test_counts_every_request_across_workers_and_worker_deaths(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serving(tmp_path, WEB_CONCURRENCY="3") as (base, proc):
        wait_for_booted_workers(log, 3)
        # /hold blocks its worker's event loop, so concurrent requests must be answered by the others.
        with ThreadPoolExecutor(6) as pool:
            pids = list(pool.map(get_pid, [f"{base}/hold"] * 12))
        assert len(set(pids)) >= 2, f"all requests landed on one worker: {pids}"
        for item in range(20):
            assert httpx.get(f"{base}/items/{item}").status_code == 200
        for probe in ("/nope", "/nope/deeper", "/wp-login.php"):
            assert httpx.get(f"{base}{probe}").status_code == 404
        n = 12 + 20 + 3

        for _ in range(6):  # new connections: the scrape lands on whichever worker accepts it
            values = samples(f"{base}/metrics")
            assert total(values, "http_requests_total") == n
            assert total(values, "http_request_duration_seconds_count") == n
        assert total(values, "http_requests_total", route="/items/{item_id}", status="200") == 20
        assert total(values, "http_requests_total", route="/hold") == 12
        assert total(values, "http_requests_total", route="unmatched", status="404") == 3
        routes = {dict(lbl)["route"] for name, lbl in values if name == "http_requests_total"}
        assert routes == {"/hold", "/items/{item_id}", "unmatched"}
        assert total(values, "http_requests_in_progress") == 0
        assert total(values, "fastlaunch_worker_restarts_total") == 0

        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        wait_for_booted_workers(log, 4)
        assert victim not in child_pids(proc.pid)
        m = 10
        for item in range(m):
            assert httpx.get(f"{base}/items/{1000 + item}", headers={"Connection": "close"}).status_code == 200

        for _ in range(6):
            values = samples(f"{base}/metrics")
            assert total(values, "http_requests_total") == n + m
        assert total(values, "http_requests_total", route="/items/{item_id}") == 20 + m
        assert total(values, "fastlaunch_worker_restarts_total") == 1
        assert total(values, "fastlaunch_worker_restarts_total", reason="crash") == 1  # SIGKILL: no word from it
        assert total(values, "http_requests_in_progress") == 0


def test_metrics_port_keeps_metrics_off_the_app_port_and_cleans_up(tmp_path: Path) -> None:
    metrics_port = free_port()
    with serving(tmp_path, WEB_CONCURRENCY="2", METRICS_PORT=str(metrics_port)) as (base, proc):
        for item in range(7):
            assert httpx.get(f"{base}/items/{item}").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 404  # the app's port serves only the app
        values = samples(f"http://127.0.0.1:{metrics_port}/metrics")
        assert total(values, "http_requests_total", route="/items/{item_id}") == 7
        assert total(values, "http_requests_total", route="unmatched") == 1
        exporters = [
            pid
            for pid in child_pids(proc.pid)
            if b"fastlaunch.launcher.metrics_exporter" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(exporters) == 1
        environ = dict(
            item.split(b"=", 1)
            for item in Path(f"/proc/{exporters[0]}/environ").read_bytes().split(b"\0")
            if b"=" in item
        )
        directory = Path(environ[b"PROMETHEUS_MULTIPROC_DIR"].decode())
        assert list(directory.glob("*.db"))
    assert not directory.exists(), "the multiprocess directory outlived the server"
    assert not Path(f"/proc/{exporters[0]}").exists(), "the exporter outlived the server"


def test_workers_recycled_by_max_requests_leave_the_metrics_and_the_exporter_alone(tmp_path: Path) -> None:
    # A worker that ends on its own (MAX_REQUESTS) returns through the frames it was forked in; the
    # master's clean-up in those frames (stop the exporter, remove the directory) must not run there.
    metrics_port = free_port()
    log = tmp_path / "server.log"
    env = {"WEB_CONCURRENCY": "2", "MAX_REQUESTS": "4", "MAX_REQUESTS_JITTER": "0", "METRICS_PORT": str(metrics_port)}
    with serving(tmp_path, **env) as (base, proc):
        exporters = [p for p in child_pids(proc.pid) if b"metrics_exporter" in Path(f"/proc/{p}/cmdline").read_bytes()]
        n = 20
        for item in range(n):
            response = httpx.get(f"{base}/items/{item}", headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200
        deadline = time.monotonic() + 30
        while log.read_text().count("Worker exiting") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.read_text().count("Worker exiting") >= 3, log.read_text()
        values = samples(f"http://127.0.0.1:{metrics_port}/metrics")
        assert total(values, "http_requests_total", route="/items/{item_id}") == n
        assert [p for p in child_pids(proc.pid) if p in exporters] == exporters, "the exporter was stopped"
        assert proc.poll() is None
    assert "Gunicorn exited" not in log.read_text()


def test_a_given_multiprocess_directory_is_wiped_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    # A previous run's counts: they must not be added to this run's.
    stale = directory / "counter_999999.db"
    stale.write_bytes(b"\0" * 64)
    with serving(tmp_path, WEB_CONCURRENCY="1", PROMETHEUS_MULTIPROC_DIR=str(directory)) as (base, _):
        assert not stale.exists()
        assert httpx.get(f"{base}/items/1").status_code == 200
        assert total(samples(f"{base}/metrics"), "http_requests_total") == 1
    assert directory.is_dir() and not list(directory.glob("*.db"))


def run_fastlaunch_without_prometheus(
    args: list[str], cwd: Path, env: dict[str, str], hide_dir: Path
) -> subprocess.CompletedProcess[str]:
    # sys.modules[name] = None is how Python itself marks a module as not importable. It is set from a
    # sitecustomize so that it also holds in the process `fastlaunch run` execs into.
    (hide_dir / "sitecustomize.py").write_text("import sys\nsys.modules['prometheus_client'] = None\n")
    return subprocess.run(
        [FASTLAUNCH, *args],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(hide_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_metrics_without_prometheus_client_is_a_config_error(tmp_path: Path) -> None:
    port = free_port()
    result = run_fastlaunch_without_prometheus(
        ["run", "--host", "127.0.0.1", "--port", str(port)], APP, {"METRICS": "on", "WEB_CONCURRENCY": "1"}, tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert "prometheus-client" in result.stderr and "fastlaunch[metrics]" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr + result.stdout


def test_metrics_port_equal_to_the_app_port_is_a_config_error(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port), "--metrics", "on", "--metrics-port", str(port)],
        cwd=APP,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"METRICS_PORT={port}" in result.stderr and "the app's port" in result.stderr
    assert "Traceback" not in result.stderr
