"""Real project shapes (tests/assets/shapes), each served by a real `fastlaunch run` process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, free_port, run_cli, running, wait_until
from support import serve as serve_app

SHAPES = ASSETS / "shapes"


def project(tmp_path: Path, name: str) -> Path:
    """A copy of the fixture: runs write lock files and databases next to the app."""
    return Path(shutil.copytree(SHAPES / name, tmp_path / name))


def serve(root: Path, path: str, env: dict[str, str] | None = None, *, booted: int = 1) -> tuple[httpx.Response, str]:
    """Start `fastlaunch run` in root, GET path once, wait for the plan line and ``booted`` workers (the first
    worker answers before the master has logged them), stop it; the response and the whole log."""
    port = free_port()
    log = root / "run.log"
    with serve_app(root, port, env={"WEB_CONCURRENCY": "1", **(env or {})}, log=log):
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        wait_until(lambda: planned(log.read_text(errors="replace"), booted), timeout=30)
    return response, log.read_text(errors="replace")


def planned(log: str, booted: int) -> bool:
    return "Worker plan: " in log and log.count("Booting worker with pid") >= booted


@pytest.mark.parametrize("app_module", ["main:create_app()", "main:create_app"])
def test_factory_serves_in_both_forms(tmp_path: Path, app_module: str) -> None:
    response, log = serve(project(tmp_path, "factory"), "/hello", {"APP_MODULE": app_module})
    assert response.status_code == 200, log
    assert response.json() == {"made_by": "create_app"}
    assert "serving main:create_app() (environment (APP_MODULE))" in log


def test_discovery_that_finds_only_a_factory_names_the_form(tmp_path: Path) -> None:
    result = run_cli(["run"], cwd=project(tmp_path, "factory"), env={"PORT": str(free_port())})
    assert result.returncode == 4
    assert "only the app factory create_app()" in result.stderr
    assert "APP_MODULE='main:create_app()'" in result.stderr
    assert "Traceback" not in result.stderr


def test_asgi2_class_app_is_served(tmp_path: Path) -> None:
    response, log = serve(project(tmp_path, "asgi2"), "/anything")
    assert response.status_code == 200, log
    assert response.text == "asgi2 says hello from /anything"
    assert re.search(r'"GET /anything HTTP/1.1" 200', log)  # behind fastlaunch's middleware: logged


@pytest.mark.parametrize("app_module", [None, "src/bookshelf", "src/bookshelf/"])
def test_src_layout_package_with_the_app_in_init(tmp_path: Path, app_module: str | None) -> None:
    env = {"APP_MODULE": app_module} if app_module else {}
    response, log = serve(project(tmp_path, "srclayout"), "/shelves/top", env)
    assert response.json() == {"shelf": "top", "package": "bookshelf"}, log
    assert "serving bookshelf:app" in log


def test_tool_fastapi_entrypoint_is_served(tmp_path: Path) -> None:
    root = project(tmp_path, "fastapi_entry")
    response, log = serve(root, "/tickets/3")
    assert response.json() == {"ticket_id": 3}, log
    assert "serving service.web:application" in log and "[tool.fastapi] entrypoint" in log
    shown = run_cli(["settings"], cwd=root, env={"COLUMNS": "250"})
    assert re.search(
        r"│ app\s+│ APP_MODULE\s+│ service\.web:application\s+│ .*\[tool\.fastapi\] entrypoint", shown.stdout
    )
    plan = run_cli(["workers", "--no-measure"], cwd=root, env={"COLUMNS": "250"})
    assert plan.stdout.startswith("App: service.web:application (")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("syntax", ["main.py:4: invalid syntax (the app's module 'main')", "    def broken(:\n               ^"]),
        ("badimport", ["main.py:3: No module named 'settings_module_that_is_not_there'", "    import settings_"]),
    ],
)
def test_load_errors_in_the_apps_file_before_anything_listens(tmp_path: Path, name: str, expected: list[str]) -> None:
    port = free_port()
    result = run_cli(["run"], cwd=project(tmp_path, name), env={"HOST": "127.0.0.1", "PORT": str(port)})
    assert result.returncode == 3
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert "Listening at" not in result.stderr + result.stdout  # the master never bound the port


def test_an_error_raised_at_import_shows_the_apps_frames_only(tmp_path: Path) -> None:
    root = Path(shutil.copytree(ASSETS / "broken", tmp_path / "broken"))
    result = run_cli(["run"], cwd=root, env={"HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": "1"})
    assert result.returncode == 3
    output = result.stdout + result.stderr
    traceback = output[output.index("Traceback") : output.index("RuntimeError: boom at import") + 1]
    assert f'File "{root / "main.py"}", line 5, in <module>' in traceback
    assert "gunicorn" not in traceback and "importlib" not in traceback and "fastlaunch" not in traceback


@pytest.mark.parametrize(("access_log", "lines"), [(None, 1), ("", 0)])
def test_access_log_obeys_even_with_the_apps_uvicorn_access_handler(
    tmp_path: Path, access_log: str | None, lines: int
) -> None:
    env = {} if access_log is None else {"ACCESS_LOG": access_log}
    response, log = serve(project(tmp_path, "loguru"), "/ping", env)
    assert response.json() == {"pong": True}
    assert len(re.findall(r"GET /ping", log)) == lines, log
    assert "APP-HANDLER uvicorn.access" not in log


def test_plan_line_names_gunicorn_cmd_args_over_web_concurrency(tmp_path: Path) -> None:
    _, log = serve(project(tmp_path, "asgi2"), "/", {"GUNICORN_CMD_ARGS": "--workers 2"}, booted=2)
    line = next(x for x in log.splitlines() if "Worker plan: " in x and "workers" in x)
    assert "Worker plan: 2 workers, set by GUNICORN_CMD_ARGS (--workers 2); fastlaunch's plan was 1 (" in line
    assert "WEB_CONCURRENCY is set: 1 workers" in line
    assert len(re.findall(r"Booting worker with pid", log)) == 2


def test_image_gunicorn_conf_that_defeats_the_plan_is_named_and_warned(tmp_path: Path) -> None:
    # The conf counts the host's CPUs (WORKERS_PER_CORE=2: twice their number); fastlaunch's plan is capped
    # by MAX_WORKERS=1 here (in a container: by its CPU quota).
    env = {"WORKERS_PER_CORE": "2", "MAX_WORKERS": "1"}
    env_without_wc = {"WEB_CONCURRENCY": ""}  # the conf reads WEB_CONCURRENCY too: leave it to the conf
    root = project(tmp_path, "imageconf")
    _, log = serve(root, "/", {**env, **env_without_wc})
    conf, n = root / "gunicorn_conf.py", max(int(2 * (os.cpu_count() or 1)), 2)
    assert f"Worker plan: {conf} sets {n} workers, more than the 1 this process's CPUs and memory allow" in log
    assert f"Worker plan: {n} workers, set by gunicorn_conf.py ({conf}: workers = {n}); fastlaunch's plan was 1" in log
    shown = json.loads(run_cli(["workers", "--json", "--no-measure"], cwd=root, env=env).stdout)
    assert (shown["workers"], shown["planned_workers"]) == (n, 1)
    assert shown["workers_set_by"] == f"gunicorn_conf.py ({conf}: workers = {n})"
    shown = json.loads(
        run_cli(["workers", "--json", "--no-measure"], cwd=root, env={"GUNICORN_CMD_ARGS": "-w 3"}).stdout
    )
    assert (shown["workers"], shown["workers_set_by"]) == (3, "GUNICORN_CMD_ARGS (-w 3)")


@pytest.mark.parametrize(
    ("name", "requests", "labels"),
    [
        (
            "mounts",
            [
                ("/api/v1/items/1", None),
                ("/tenants/a/v2/items/7", None),
                ("/tenants/b/v2/items/8", None),
                ("/panel", "admin.example.com"),
            ],
            {"/api/v1/items/{item_id}": 1, "/tenants/{tenant}/v2/items/{item_id}": 2, "/panel": 1},
        ),
        ("litestar", [("/shop/orders/5", None), ("/health", None)], {"/shop/orders/{order_id}": 1, "/health": 1}),
    ],
)
def test_route_labels_behind_mounts_hosts_and_litestar(
    tmp_path: Path, name: str, requests: list[tuple[str, str | None]], labels: dict[str, int]
) -> None:
    root = project(tmp_path, name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_app(root, port, log=root / "run.log", ready_path="/metrics", WEB_CONCURRENCY="1", METRICS="on"):
        for path, host in requests:
            response = httpx.get(base + path, headers={"host": host} if host else {})
            assert response.status_code == 200, path
        metrics = httpx.get(f"{base}/metrics").text
    for label, count in labels.items():
        assert f'http_requests_total{{method="GET",route="{label}",status="200"}} {count:.1f}' in metrics, metrics
    assert 'route="unmatched"' not in metrics


def test_prestart_warns_of_a_second_migration_and_a_file_only_lock(tmp_path: Path) -> None:
    root = project(tmp_path, "prestart")
    response, log = serve(root, "/", {"SHOP_DB_FILE": str(tmp_path / "shop.db")})
    assert response.json() == {"ok": True}
    assert (
        f"{root / 'prestart.sh'}:5 runs `alembic upgrade head` although fastlaunch has just migrated "
        "(MIGRATE=auto, default)" in log
    )
    assert "The migration lock is only a file lock" in log
    assert f"DATABASE_URL is not set and {root / 'migrations' / 'env.py'} builds its database URL itself" in log
    assert "set DATABASE_URL to that SQLite URL" in log and "PostgreSQL" not in log  # the app's is SQLite
    quiet = serve(root, "/", {"SHOP_DB_FILE": str(tmp_path / "shop.db"), "MIGRATE": "off"})[1]
    assert "runs `alembic upgrade head`" not in quiet and "only a file lock" not in quiet


def test_dev_reads_host_and_port_and_serves_a_factory(tmp_path: Path) -> None:
    root = project(tmp_path, "factory")
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "APP_MODULE": "main:create_app"}
    url = f"http://127.0.0.1:{port}/hello"
    with running([FASTLAUNCH, "dev", "--no-reload"], cwd=root, env=env, log=root / "dev.log", ready_url=url):
        assert httpx.get(url).json() == {"made_by": "create_app"}
    assert "Traceback" not in (root / "dev.log").read_text()


def test_settings_shows_the_discovered_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [FASTLAUNCH, "settings"],
        cwd=project(tmp_path, "asgi2"),
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert re.search(r"│ app\s+│ APP_MODULE\s+│ main:app\s+│ automatic: found main\.py", result.stdout), result.stdout
