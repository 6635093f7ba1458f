"""MAX_WORKER_MEMORY on a real `fastlaunch run` inside a real memory cgroup: a leaking handler under bounded load
makes workers pass their cap; each one finishes its requests and is replaced, no request fails, and the cgroup's
limit is never reached (its out-of-memory killer never runs)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cgroup_kit
import httpx
from cgroup_kit import LIMIT, MemoryGroup, MiB
from prometheus_client.parser import text_string_to_metric_families
from support import ASSETS, FASTLAUNCH, free_port, running

LEAK_MB = 2
memory_group = cgroup_kit.memory_group


def restarts_by_reason(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
    return {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fastlaunch_worker_restarts_total"
    }


def test_leaking_workers_are_replaced_before_the_limit(memory_group: MemoryGroup, tmp_path: Path) -> None:
    shutil.copy(ASSETS / "memory/leaky/main.py", tmp_path / "main.py")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "MAX_WORKER_MEMORY": "auto",
        "METRICS": "on",
        "LEAK_MB": str(LEAK_MB),
    }

    # 2 clients x 150 requests, each keeping 2 MiB in the worker that answers it: 600 MiB in all, twice the
    # limit. A pause between requests keeps the load bounded: a leak of a few MiB a second, not a burst.
    def client(_: int) -> list[int | str]:
        statuses: list[int | str] = []
        # A new connection each: what is tested is the worker's stop, not the keep-alive race every server has
        # (a client paused for a while sends on a connection the server has just closed as idle).
        with httpx.Client(timeout=30, headers={"Connection": "close"}) as http:
            for _ in range(150):
                try:
                    statuses.append(http.get(f"{base}/leak").status_code)
                except httpx.HTTPError as exc:
                    statuses.append(f"{time.time():.3f} {exc!r}")
                time.sleep(0.03)
        return statuses

    with running(memory_group.enter(FASTLAUNCH, "run"), cwd=tmp_path, env=env, log=log, ready_url=f"{base}/") as proc:
        with ThreadPoolExecutor(2) as pool:
            statuses = [s for batch in pool.map(client, range(2)) for s in batch]
        # A worker may still be on its way out: until the log and the counter agree (bounded).
        deadline = time.monotonic() + 20
        while True:
            reasons = restarts_by_reason(base)
            text = log.read_text(errors="replace")
            replaced = re.findall(r"Worker \d+ exited \(reason: (\w+)\)", text)
            if len(replaced) == sum(reasons.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        share = re.search(r"MAX_WORKER_MEMORY=auto: (\d+) MiB per worker", text)
        assert proc.poll() is None, text

    assert statuses.count(200) == 300, f"failed: {[s for s in statuses if s != 200]}\n{text}"
    assert share is not None and 0 < int(share.group(1)) * MiB < LIMIT // 2, text
    assert replaced and set(replaced) == {"memory"}, text
    assert "is over MAX_WORKER_MEMORY" in text
    assert reasons["memory"] == len(replaced) and reasons["crash"] == 0, reasons
    assert memory_group.oom_kills() == 0, text
    peak = memory_group.peak()
    assert peak is None or peak < LIMIT


def test_each_replacement_says_why(tmp_path: Path) -> None:
    shutil.copy(ASSETS / "memory/leaky/main.py", tmp_path / "main.py")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "MAX_REQUESTS": "4", "METRICS": "on"}
    with running([FASTLAUNCH, "run"], cwd=tmp_path, env=env, log=log, ready_url=f"{base}/") as proc:
        for _ in range(3):  # with the readiness probe, the first worker's 4th request: its limit
            assert httpx.get(f"{base}/", headers={"Connection": "close"}).status_code == 200
        deadline = time.monotonic() + 30
        while "reason: max_requests" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        reasons = restarts_by_reason(base)
        victim = int(httpx.get(f"{base}/", headers={"Connection": "close"}).json()["pid"])
        os.kill(victim, signal.SIGKILL)
        while "reason: crash" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None
    text = log.read_text()
    assert re.search(r"Worker \d+ exited \(reason: max_requests\); a new worker replaces it", text), text
    assert f"Worker {victim} exited (reason: crash)" in text
    assert reasons["max_requests"] >= 1 and reasons["memory"] == 0


BALLAST_APP = """\
BALLAST = bytearray(35 * 2**20)  # a model the app loads at import: 35 MiB of its own
BALLAST[:: 4096] = b"\\x01" * len(BALLAST[:: 4096])  # every page written, so it is really held


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def test_an_auto_share_below_the_boot_size_turns_recycling_off(memory_group: MemoryGroup, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(BALLAST_APP)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    # Five workers of about 46 MiB (USS) forced past the plan (GUNICORN_CMD_ARGS wins): they fit in the 300 MiB
    # limit, but its share per worker, after the master and the margins, is about 41 MiB.
    env = {"HOST": "127.0.0.1", "PORT": str(port), "MAX_WORKER_MEMORY": "auto", "GUNICORN_CMD_ARGS": "--workers 5"}
    with running(memory_group.enter(FASTLAUNCH, "run"), cwd=tmp_path, env=env, log=log, ready_url=f"{base}/") as proc:
        deadline = time.monotonic() + 60
        while "workers are not recycled by memory" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # long enough for a worker over a cap to have said so (it checks every 0.2 s)
        assert httpx.get(f"{base}/", headers={"Connection": "close"}).status_code == 200
        assert proc.poll() is None
    text = log.read_text()
    below = r"for each of 5 workers, \d+ MiB, is below the \d+ MiB \(USS\) a worker holds once it has loaded the app"
    assert re.search(below, text), text
    assert text.count("workers are not recycled by memory") == 1
    assert "is over MAX_WORKER_MEMORY" not in text and "reason: memory" not in text, text
    assert memory_group.oom_kills() == 0
