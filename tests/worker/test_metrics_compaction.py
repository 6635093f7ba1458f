"""METRICS=on through worker recycling: 500 workers replaced (MAX_REQUESTS=1; Uvicorn checks the limit between
requests, so a worker may answer a few). The multiprocess
directory keeps only the live workers' files (dead workers' totals move to the master's archive), and the
totals still count every request and every replacement."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import ASSETS, FASTLAUNCH, free_port, running

RECYCLED = 500
WORKERS = 4


def scrape(base: str) -> dict[str, float]:
    """Totals by sample name (labels summed), and restarts by reason."""
    response = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            key = f"{s.name}:{s.labels['reason']}" if "reason" in s.labels else s.name
            totals[key] = totals.get(key, 0.0) + s.value
    return totals


def test_recycled_workers_files_are_compacted_and_totals_add_up(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    multiproc = tmp_path / "multiproc"
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WORKERS),
        "METRICS": "on",
        "MAX_REQUESTS": "1",
        "PRELOAD": "on",  # the app is the master's: a replacement only forks and starts Uvicorn
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    log = tmp_path / "server.log"
    deadline = time.monotonic() + 400
    answered: list[int] = []
    most_files = 0

    def replaced() -> int:
        return log.read_text().count("(reason: max_requests)")

    def client(_: int) -> None:
        with httpx.Client(headers={"Connection": "close"}, timeout=10) as http:
            while replaced() < RECYCLED and time.monotonic() < deadline:
                try:
                    answered.append(http.get(f"{base}/").status_code)
                except httpx.HTTPError:  # every worker was being replaced: try again
                    time.sleep(0.05)

    with running([FASTLAUNCH, "run"], cwd=ASSETS / "leanmaster", env=env, log=log, ready_url=f"{base}/"):
        with ThreadPoolExecutor(WORKERS) as pool:
            done = pool.map(client, range(WORKERS))
            while replaced() < RECYCLED and time.monotonic() < deadline:
                most_files = max(most_files, len(list(multiproc.iterdir())))
                time.sleep(0.2)
            list(done)
        count = replaced()
        assert count >= RECYCLED, f"{count} workers replaced before the deadline"
        totals = scrape(base)  # counted itself only once answered
        files = sorted(p.name for p in multiproc.iterdir())
    text = log.read_text()
    # Each live worker has a counter, a histogram and a live gauge file; replacements overlap deaths.
    assert most_files <= 3 * (WORKERS + 2), (most_files, files)
    assert len(files) <= 3 * (WORKERS + 2), files
    requests = answered.count(200) + 1  # and the ready probe
    assert totals["http_requests_total"] == requests, text[-3000:]
    assert totals["http_request_duration_seconds_count"] == requests
    assert totals["fastlaunch_worker_restarts_total:max_requests"] >= count, totals
    assert totals.get("fastlaunch_worker_restarts_total:crash", 0) == 0, totals
