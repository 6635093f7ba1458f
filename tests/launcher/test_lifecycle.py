"""``fastlaunch run`` as a real process tree on 127.0.0.1: signals, crashes, reloads, under a bounded load."""

from __future__ import annotations

import gc
import http.client
import json
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support import ASSETS, child_pids, free_port, run_cli, serve, stop, wait_for_log, wait_for_workers, wait_until
from websockets.sync.client import connect

from fastlaunch.core.exceptions import ExitCode
from fastlaunch.launcher.cgroups import read_limits
from fastlaunch.worker.gc_tuning import YOUNG_THRESHOLD


@dataclass
class Load:
    """A bounded client: fresh connection per request, stops after max_requests or max_seconds."""

    port: int
    path: str = "/"
    keep_alive: bool = False  # one persistent connection, reopened only after a clean `Connection: close`
    max_requests: int = 3000
    max_seconds: float = 30.0
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> Load:
        self._run()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"status {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {exc!r}")
                conn.close()
            if not self.keep_alive:
                conn.close()
        conn.close()

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.max_seconds + 15)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    shutil.copy(ASSETS / "lifecycle/main.py", tmp_path / "main.py")
    return tmp_path


def test_sigterm_lets_in_flight_requests_finish(app_dir: Path) -> None:
    port = free_port()
    results: list[int | str] = []

    inflight = app_dir / "inflight"
    inflight.mkdir()

    def slow_request(n: int) -> None:
        try:
            results.append(httpx.get(f"http://127.0.0.1:{port}/slow?s=3&mark={n}", timeout=30).status_code)
        except httpx.HTTPError as exc:
            results.append(repr(exc))

    with serve(app_dir, port, WEB_CONCURRENCY="2", GRACEFUL_TIMEOUT="20", INFLIGHT_DIR=str(inflight)) as proc:
        wait_for_workers(proc.pid, 2)
        threads = [threading.Thread(target=slow_request, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(list(inflight.iterdir())) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(inflight.iterdir())) == 8, "the slow requests never reached the app"
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(40)
        assert proc.wait(timeout=25) == 0
    assert results == [200] * 8


def test_sighup_replaces_workers_without_failed_requests(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2") as proc:
        old = set(wait_for_workers(proc.pid, 2))
        with Load(port) as load:
            assert wait_until(lambda: load.ok >= 20, timeout=30), "requests flowing before the reload"
            proc.send_signal(signal.SIGHUP)
            new = wait_for_workers(proc.pid, 2, exclude=old)
            served = load.ok
            assert wait_until(lambda: load.ok >= served + 20, timeout=30), "and served by the new workers"
        assert not old & set(new)
        assert load.failed == [] and load.ok > 20  # the load overlapped the reload


def test_sighup_with_keep_alive_clients_fails_no_request(app_dir: Path) -> None:
    # Browsers and HTTP libraries reuse connections: a reload must not close one under a request.
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2") as proc:
        old = set(wait_for_workers(proc.pid, 2))
        loads = [Load(port, keep_alive=True, max_requests=20000) for _ in range(4)]
        for load in loads:
            load.__enter__()
        assert wait_until(lambda: all(load.ok >= 10 for load in loads), timeout=30), "each connection in use"
        proc.send_signal(signal.SIGHUP)
        wait_for_workers(proc.pid, 2, exclude=old)
        served = [load.ok for load in loads]
        # Each connection goes on past the reload: its old worker closed it cleanly, a new one serves it.
        assert wait_until(lambda: all(load.ok >= n + 20 for load, n in zip(loads, served, strict=True)), timeout=30)
        for load in loads:
            load.__exit__()
    assert [f for load in loads for f in load.failed] == []
    assert all(load.ok > 20 for load in loads)


def test_killed_worker_is_replaced_and_service_continues(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2") as proc:
        workers = wait_for_workers(proc.pid, 2)
        os.kill(workers[0], signal.SIGKILL)
        replaced = wait_for_workers(proc.pid, 2, exclude={workers[0]})
        assert workers[1] in replaced
        load = Load(port, max_requests=100).run()
        assert load.ok == 100 and load.failed == []
        pids = {httpx.get(f"http://127.0.0.1:{port}/").json()["pid"] for _ in range(40)}
        assert pids <= set(replaced)


def test_ttin_and_ttou_add_and_remove_a_worker(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2") as proc:
        wait_for_workers(proc.pid, 2)
        proc.send_signal(signal.SIGTTIN)
        wait_for_workers(proc.pid, 3)
        proc.send_signal(signal.SIGTTOU)
        wait_for_workers(proc.pid, 2)
        proc.send_signal(signal.SIGTTOU)  # one at a time: two pending signals of a kind coalesce into one
        wait_for_workers(proc.pid, 1)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_app_raising_on_import_shows_traceback_once_and_exits(tmp_path: Path) -> None:
    shutil.copy(ASSETS / "broken/main.py", tmp_path / "main.py")
    r = run_cli(["run"], cwd=tmp_path, env={"HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": "4"})
    assert r.returncode == ExitCode.APP_BOOT
    assert r.stderr.count("Traceback (most recent call last)") == 1
    assert r.stderr.count("RuntimeError: boom at import") == 1
    assert r.stderr.count("Booting worker") == 1  # no restart loop, and the other three never started
    assert "a worker failed to boot" in r.stderr


def test_attribute_missing_at_import_time_is_reported_without_traceback(tmp_path: Path) -> None:
    # Defined conditionally, so only the import can tell; the worker reports it in one line.
    (tmp_path / "main.py").write_text("import os\nif os.environ.get('NEVER'):\n    app = None\n")
    r = run_cli(["run"], cwd=tmp_path, env={"HOST": "127.0.0.1", "PORT": str(free_port()), "APP_MODULE": "main:app"})
    assert r.returncode == ExitCode.APP_NOT_FOUND
    assert "Module 'main' has no attribute 'app'" in r.stderr
    assert "Traceback" not in r.stderr


def test_max_workers_one_gives_exactly_one_worker(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, MAX_WORKERS="1") as proc:
        wait_for_log(app_dir / "server.log", "1 worker serving")  # all the master wants: no late second one
        assert len(child_pids(proc.pid)) == 1


def test_workers_inherit_no_rich_and_import_no_cli(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1"):
        modules = httpx.get(f"http://127.0.0.1:{port}/modules").json()
    # `fastlaunch run` parsed its flags with Typer, then exec'd the serving process: nothing of it is left.
    # (click is there: uvicorn's package imports its own command line.)
    assert modules == {"rich": False, "typer": False, "click": True, "fastlaunch.cli.commands": False}


def test_workers_take_the_loaded_app_out_of_the_collectors_way(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1"):
        state = httpx.get(f"http://127.0.0.1:{port}/gc").json()
    # Everything the app's import created is frozen; what remains tracked is what serving has created since.
    assert state["frozen"] > state["tracked"], state
    # The collector was off while the app was imported (a faster start) and is on again for serving.
    assert (state["enabled_at_import"], state["enabled"]) == (False, True)
    assert state["threshold"][0] == YOUNG_THRESHOLD > gc.get_threshold()[0]

    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1", APP_GC_THRESHOLD="500"):
        state = httpx.get(f"http://127.0.0.1:{port}/gc").json()
    assert state["threshold"][0] == 500, "the app's own choice is kept"


def test_the_master_loads_neither_pydantic_nor_fastapi(app_dir: Path) -> None:
    # Only the workers import the app. A compiled module shows in a process's memory map, so the worker's
    # map proves the check would see pydantic had the launcher (or a CLI library it uses) imported it.
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1") as proc:
        (worker,) = wait_for_workers(proc.pid, 1)
        httpx.get(f"http://127.0.0.1:{port}/")
        master_map = Path(f"/proc/{proc.pid}/maps").read_text()
        worker_map = Path(f"/proc/{worker}/maps").read_text()
    assert "pydantic_core" in worker_map
    assert "pydantic_core" not in master_map


def test_gunicorn_conf_applies_then_gunicorn_cmd_args_win(app_dir: Path) -> None:
    (app_dir / "gunicorn_conf.py").write_text("workers = 3\n")
    port = free_port()
    with serve(app_dir, port) as proc:
        wait_for_workers(proc.pid, 3)
    port = free_port()
    with serve(app_dir, port, GUNICORN_CMD_ARGS="--workers 1") as proc:
        # The master says when all the workers it wants serve: one, not fastlaunch's plan or the file's three.
        wait_for_log(app_dir / "server.log", "1 worker serving")
        assert len(child_pids(proc.pid)) == 1


def _ws_scope(port: int, headers: dict[str, str]) -> dict[str, str]:
    with connect(f"ws://127.0.0.1:{port}/ws-scope", additional_headers=headers, open_timeout=10) as ws:
        seen: dict[str, str] = json.loads(ws.recv(timeout=10))
    return seen


def test_root_path_and_forwarded_headers(app_dir: Path) -> None:
    port = free_port()
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with serve(app_dir, port, ROOT_PATH="/api", WEB_CONCURRENCY="1"):
        seen = httpx.get(f"http://127.0.0.1:{port}/scope", headers=forwarded).json()
        plain = httpx.get(f"http://127.0.0.1:{port}/scope?marker=plain").json()
        ws = _ws_scope(port, forwarded)
    assert seen == {"root_path": "/api", "client": "203.0.113.7", "scheme": "https"}  # 127.0.0.1 is trusted
    assert plain["client"] == "127.0.0.1" and plain["scheme"] == "http"
    assert ws == {"client": "203.0.113.7", "scheme": "wss"}
    log = (app_dir / "server.log").read_text()
    assert '203.0.113.7:0 - "GET /api/scope HTTP/1.1" 200' in log  # the access log names the real client too
    port = free_port()
    with serve(app_dir, port, FORWARDED_ALLOW_IPS="10.9.9.9", WEB_CONCURRENCY="1"):
        seen = httpx.get(f"http://127.0.0.1:{port}/scope", headers=forwarded).json()
        ws = _ws_scope(port, forwarded)
    assert seen["client"] == "127.0.0.1" and seen["scheme"] == "http"  # untrusted peer: headers ignored
    assert ws["client"] == "127.0.0.1" and ws["scheme"] == "ws"


def test_access_log_on_and_off(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1"):
        httpx.get(f"http://127.0.0.1:{port}/scope?marker=on")
    # The server has stopped: everything it would log is in the log.
    assert "GET /scope?marker=on" in (app_dir / "server.log").read_text()
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="1", ACCESS_LOG=""):
        httpx.get(f"http://127.0.0.1:{port}/scope?marker=off")
    assert "marker=off" not in (app_dir / "server.log").read_text()


def test_workers_command_explains_its_numbers(app_dir: Path) -> None:
    # WORKER_MEMORY=1M: a memory limit on this host, if any, caps nothing.
    env = {"WORKERS_PER_CORE": "2", "MAX_WORKERS": "3", "WORKER_MEMORY": "1M"}
    r = run_cli(["workers", "--json"], cwd=app_dir, env=env)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    inputs = {i["name"]: i for i in plan["inputs"]}
    assert inputs["WORKERS_PER_CORE"] == {
        "name": "WORKERS_PER_CORE",
        "value": "2",
        "source": "environment (WORKERS_PER_CORE)",
    }
    assert inputs["MAX_WORKERS"]["source"] == "environment (MAX_WORKERS)"
    # The CPUs this process may use: affinity, narrowed by a CPU quota on this host if it has one.
    quota = read_limits(Path("/")).cpu
    cpus = len(os.sched_getaffinity(0))
    if quota is not None:
        cpus = max(1, min(cpus, math.ceil(float(quota.value))))
    assert plan["cpus"] == cpus
    assert plan["workers"] == min(max(2 * cpus, 2), 3)
    assert any(s.startswith("CPU formula = max(int(2 x") for s in plan["steps"])
    table = run_cli(["workers"], cwd=app_dir, env={**env, "COLUMNS": "200"})
    assert "Worker plan inputs" in table.stdout and f"workers = {plan['workers']}" in table.stdout


def test_stop_is_by_pid_and_leaves_no_children(app_dir: Path) -> None:
    port = free_port()
    with serve(app_dir, port, WEB_CONCURRENCY="2") as proc:
        workers = wait_for_workers(proc.pid, 2)
    assert stop(proc) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
