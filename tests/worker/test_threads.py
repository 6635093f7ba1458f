"""REQUEST_TIMEOUT and sync handlers against a real `fastlaunch run`: a cut handler's thread keeps its place in
the pool until it returns, so a worker's threads stay bounded while every client gets its 504."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from hung import hung_app, serve
from support import child_pids, free_port

CLIENTS = 100
SECONDS = 8.0  # of load: at one request per client per REQUEST_TIMEOUT, ~800 requests
POOL = 40  # AnyIO's default thread limiter
# The worker's own threads beside the pool (main, access log writer, watchdog, ...), generously.
OWN_THREADS = 15


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def test_timed_out_sync_handlers_do_not_grow_the_thread_pool(tmp_path: Path) -> None:
    app_dir = hung_app(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/sync-sleep?seconds=20"
    # A short graceful timeout: at the end the worker is stopped with its threads still sleeping.
    with serve(app_dir, port, REQUEST_TIMEOUT="1", WEB_CONCURRENCY="1", GRACEFUL_TIMEOUT="3") as proc:
        (worker,) = child_pids(proc.pid)
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop_at = time.monotonic() + SECONDS

        def client() -> None:
            with httpx.Client(timeout=30) as http:
                while time.monotonic() < stop_at:
                    status = http.get(url).status_code
                    with lock:
                        statuses[status] += 1

        most = 0
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client) for _ in range(CLIENTS)]
            while not all(f.done() for f in futures):
                most = max(most, threads_of(worker))
                time.sleep(0.25)
            for future in futures:
                future.result()
        most = max(most, threads_of(worker))
        assert set(statuses) == {504}, statuses  # every request cut, each time
        assert statuses[504] >= CLIENTS
        print(f"{sum(statuses.values())} requests, at most {most} threads")
        assert most <= POOL + OWN_THREADS, f"the worker grew to {most} threads"
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "ok"  # async handlers still served
