"""fastlaunch check: each finding on a fixture that has the problem, and absent from the same fixture fixed
(tests/assets/check/shop, whose files are consistent as they are); the example and every file init writes
pass clean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from pg import PASSWORD, USER, PostgresCluster
from projects import INIT_ARGS, PROJECTS, copy_project
from support import ASSETS, free_port, run_cli

from fastlaunch.core.pyproject import read_tool_table
from fastlaunch.core.settings import load_settings
from fastlaunch.kit.check.connections import demand
from fastlaunch.kit.check.context import Host
from fastlaunch.kit.check.pools import read_pools
from fastlaunch.kit.check.preflight import check_project
from fastlaunch.kit.check.report import Finding, Report

SHOP = ASSETS / "check" / "shop"
ENV = {"DB_PASSWORD": "shop-Secret-42"}


def shop(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHOP, tmp_path / "shop"))


def check(root: Path, environ: dict[str, str] | None = None, host: Host | None = None) -> Report:
    table, path = read_tool_table(root)
    settings = load_settings(environ=environ or {}, pyproject=table, pyproject_path=path, project_dir=root)
    return check_project(root, settings, host or Host(2, "the test's"))


def edit(root: Path, file: str, old: str, new: str) -> None:
    text = (root / file).read_text()
    assert old in text, f"{old!r} not in {file}"
    (root / file).write_text(text.replace(old, new, 1))


def line_of(root: Path, file: str, text: str) -> str:
    lines = (root / file).read_text().splitlines()
    return f"{file}:{next(i for i, line in enumerate(lines, 1) if text in line)}"


def only(report: Report, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.render()
    return found[0]


def test_the_fixture_is_clean_and_shows_its_arithmetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    report = check(shop(tmp_path))
    assert report.findings == [], report.render()
    text = report.render()
    assert "15 per worker x 2 worker(s) x (2 replica(s) (compose.yaml:19)) = 60" in text
    assert "max_connections 200 (compose.yaml:6) - superuser_reserved_connections 3 = 197" in text
    assert "15 per worker x 1 worker(s) x (3 replica(s) (k8s/shop.yaml:59) + 1 surge (k8s/shop.yaml:23)) = 60" in text
    assert "pool_size: settings.pool_size: DB_POOL_SIZE unset, default 5 (shop/config.py:8)" in text
    assert ENV["DB_PASSWORD"] not in text + json.dumps(report.as_dict())
    assert "shop-worker" not in text  # a Deployment whose command is not the app's server


# (file, text, replacement, code, severity, where: the line holding this text is named)
CASES = [
    ("k8s/shop.yaml", "maxReplicas: 3", "maxReplicas: 8", "FC101", "error", "maxReplicas"),
    ("k8s/shop.yaml", 'WEB_CONCURRENCY: "1"', 'WEB_CONCURRENCY: "1"\n  DB_POOL_SIZE: "30"', "FC101", "error", None),
    ("compose.yaml", "replicas: 2", "replicas: 7", "FC101", "error", "replicas: 7"),
    (
        "k8s/shop.yaml",
        'WEB_CONCURRENCY: "1"',
        'WEB_CONCURRENCY: "1"\n  DB_MAX_OVERFLOW: "-1"',
        "FC102",
        "warning",
        None,
    ),
    (
        "k8s/shop.yaml",
        'WEB_CONCURRENCY: "1"',
        'WEB_CONCURRENCY: "1"\n  MAX_WORKER_MEMORY: "600M"',
        "FC201",
        "error",
        "MAX_WORKER_MEMORY",
    ),
    ("k8s/shop.yaml", "{path: /readyz, port: http}", "{path: /ready, port: http}", "FC301", "error", "readinessProbe"),
    ("compose.yaml", "8000/readyz", "8000/status", "FC301", "error", "test:"),
    ("Dockerfile", "8000/healthz", "8000/health", "FC301", "error", "HEALTHCHECK"),
    (
        "k8s/shop.yaml",
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 30",
        "FC302",
        "error",
        "terminationGracePeriodSeconds",
    ),
    ("compose.yaml", "    stop_grace_period: 40s\n", "", "FC302", "error", "  app:"),
    (
        "compose.yaml",
        "FORWARDED_ALLOW_IPS: 172.30.0.10",
        "FORWARDED_ALLOW_IPS: 172.30.0.11",
        "FC303",
        "error",
        "ipv4_address",
    ),
    ("compose.yaml", "FORWARDED_ALLOW_IPS: 172.30.0.10", 'FORWARDED_ALLOW_IPS: "*"', "FC303", "warning", None),
    ("k8s/shop.yaml", '  FORWARDED_ALLOW_IPS: "10.0.0.0/8"\n', "", "FC303", "warning", None),
    ("k8s/shop.yaml", "containerPort: 8000", "containerPort: 8080", "FC304", "error", "containerPort"),
    ("Caddyfile", "app:8000", "app:8080", "FC304", "error", "reverse_proxy"),
    ("Dockerfile", "EXPOSE 8000", "EXPOSE 80", "FC304", "error", "EXPOSE"),
    ("k8s/shop.yaml", 'WEB_CONCURRENCY: "1"', 'WEB_CONCURRENCY: "8"', "FC305", "warning", 'WEB_CONCURRENCY: "8"'),
    ("k8s/shop.yaml", "failureThreshold: 10", "failureThreshold: 5", "FC306", "warning", "startupProbe"),
    ("k8s/shop.yaml", 'WEB_CONCURRENCY: "1"', 'WEB_CONCURRENCY: "many"', "FC001", "error", None),
    ("deploy/shop.service", "TimeoutStopSec=40", "TimeoutStopSec=20", "FC302", "error", "TimeoutStopSec"),
    ("deploy/shop-nginx.conf", "127.0.0.1:8000", "127.0.0.1:8001", "FC304", "error", "server 127.0.0.1"),
    ("deploy/shop.service", "WEB_CONCURRENCY=2", "WEB_CONCURRENCY=8", "FC101", "error", None),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "code", "severity", "where"), CASES, ids=[f"{c[3]}-{c[0]}" for c in CASES]
)
def test_each_problem_is_found_where_it_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file: str,
    old: str,
    new: str,
    code: str,
    severity: str,
    where: str | None,
) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    edit(root, file, old, new)
    finding = only(check(root), code)
    assert finding.severity == severity
    if where:
        assert line_of(root, file, where) in finding.locations, finding.render()
    assert finding.fix and finding.arithmetic


def test_connections_fix_names_the_replicas_that_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    edit(root, "k8s/shop.yaml", "maxReplicas: 3", "maxReplicas: 8")
    finding = only(check(root), "FC101")
    assert "= 135 at the peak > 97 the server accepts" in "\n".join(finding.arithmetic)  # 15 x 1 x (8 + 1)
    assert "at most 5 replica(s) (peak 6 with the surge)" in finding.fix


def test_a_swarm_stack_counts_its_replicas_and_start_first_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    (root / "compose.yaml").rename(root / "stack.yaml")
    edit(
        root,
        "stack.yaml",
        "      replicas: 2\n",
        "      replicas: 6\n      update_config:\n        order: start-first\n",
    )
    report = check(root)
    finding = only(report, "FC101")
    assert "15 per worker x 2 worker(s) x (6 replica(s) (stack.yaml:19) + 1 surge (stack.yaml:21)) = 210" in (
        "\n".join(finding.arithmetic)
    )


def test_a_layered_compose_project(tmp_path: Path) -> None:
    """compose.yml + compose.override.yml merged, env_file, a Dockerfile per service, routers included in routers."""
    root = tmp_path / "layered"
    files = {
        "compose.yml": """services:
  backend:
    build: {context: ., dockerfile: backend/Dockerfile}
    env_file: [.env]
    stop_grace_period: 2m30s
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8000/api/v1/utils/health-check/"]
  frontend:
    build: {context: ., dockerfile: frontend/Dockerfile}
""",
        "compose.override.yml": """services:
  backend:
    ports: ["8001:8000"]
    environment:
      POOL: "3"
""",
        ".env": "POOL=4\nWEB_CONCURRENCY=2\n",
        "backend/Dockerfile": 'FROM python:3.12-slim\nENV PORT=8000\nCMD ["fastlaunch", "run"]\n',
        "frontend/Dockerfile": 'FROM nginx:1\nCMD ["nginx", "-g", "daemon off;"]\n',
        "backend/app/__init__.py": "",
        "backend/app/utils.py": """from fastapi import APIRouter
router = APIRouter(prefix="/utils")
@router.get("/health-check/")
async def health() -> bool:
    return True
""",
        "backend/app/items.py": """from fastapi import APIRouter
router = APIRouter(prefix="/items")
@router.get("/{item_id}")
async def item(item_id: int) -> int:
    return item_id
""",
        "backend/app/main.py": """import os
from fastapi import APIRouter, FastAPI
from sqlalchemy import create_engine
from app import items, utils
engine = create_engine(os.environ["DATABASE_URL"], pool_size=int(os.getenv("POOL", "5")), max_overflow=0)
api_router = APIRouter()
api_router.include_router(utils.router)
api_router.include_router(items.router)
app = FastAPI()
app.include_router(api_router, prefix="/api/v1")
""",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    report = check(root)
    assert report.findings == [], report.render()
    text = report.render()
    assert "compose.yml:2 service backend" in text and "frontend" not in text
    assert "1 x (pool_size 3 + max_overflow 0) = 3" in text  # the override's environment over env_file
    assert "3 per worker x 2 worker(s)" in text  # WEB_CONCURRENCY from env_file
    edit(root, "backend/app/main.py", 'prefix="/api/v1"', 'prefix="/api/v2"')
    assert only(check(root), "FC301").locations == ["compose.yml:7"]


def test_gunicorn_run_directly_starts_the_workers_it_is_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod that runs Gunicorn itself: its -w, not fastlaunch's plan; fastlaunch's drain does not apply."""
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    edit(
        root, "k8s/shop.yaml", "        - name: web\n", "        - name: web\n          command: [gunicorn, -w, '3']\n"
    )
    edit(root, "k8s/shop.yaml", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 5")
    finding = only(check(root), "FC101")  # 15 x 3 x (3 + 1) = 180
    assert "15 per worker x 3 worker(s) x (3 replica(s)" in "\n".join(finding.arithmetic)
    assert line_of(root, "k8s/shop.yaml", "command: [gunicorn") in check(root).render()
    assert not [f for f in check(root).findings if f.code == "FC302"]


def test_pools_read_statically(tmp_path: Path) -> None:
    (tmp_path / "db.py").write_text(
        """import functools
import asyncpg
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool, StaticPool

SIZE = 7

@functools.lru_cache
def engine():
    return create_engine("postgresql://db/app", pool_size=SIZE, max_overflow=0)

def reports():
    options = dict(pool_size=2)
    return create_engine("postgresql://db/reports", **options)

unpooled = create_engine("postgresql://db/app", poolclass=NullPool)
single = create_engine("postgresql://db/app", poolclass=StaticPool)
local = create_engine("sqlite:///app.db", pool_size=50)

async def pool():
    return await asyncpg.create_pool("postgresql://db/app", max_size=4)

engine(), engine(), reports(), reports(), reports()
"""
    )
    pools = read_pools(tmp_path, [tmp_path / "db.py"], {})
    need = demand(pools)
    text = "\n".join(need.lines)
    assert "1 x (pool_size 7 + max_overflow 0) = 7" in text and "cached: once" not in text  # shown only > 1
    assert "3 x (pool_size 2 + max_overflow 10) = 36" in text
    assert "NullPool, one connection per request in flight (not counted)" in text
    assert "1 x (StaticPool: 1) = 1" in text
    assert "1 x (max_size 4) = 4" in text
    assert need.per_worker == 7 + 36 + 1 + 4  # the SQLite file is not a server's connections


def test_workers_without_a_cpu_limit_follow_the_hosts_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    edit(root, "compose.yaml", '          cpus: "2"\n', "")
    assert check(root, host=Host(4, "--cpus")).findings == []
    finding = only(check(root, host=Host(7, "--cpus")), "FC101")  # 15 x 7 x 2 = 210 > 197
    assert finding.severity == "warning" and "on a host of this size" in finding.title


def test_memory_is_measured_with_import(tmp_path: Path) -> None:
    root = shop(tmp_path)
    edit(root, "compose.yaml", "memory: 1G", "memory: 48M")
    assert run_cli(["check", "--cpus", "2"], cwd=root, env=ENV).returncode == 0
    result = run_cli(["check", "--cpus", "2", "--import", "--format", "json"], cwd=root, env=ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["code"] == "FC201"]
    assert "do not fit the memory limit 48 MiB" in finding["title"]
    assert any(line.startswith("  memory fit = floor(") for line in finding["arithmetic"])


def test_preload_puts_the_app_in_the_master_too(tmp_path: Path) -> None:
    """160 MiB less 10%: a worker of about 75 MiB fits beside a bare master (40 MiB), not beside one holding the
    app as well."""
    root = shop(tmp_path)
    edit(root, "compose.yaml", "memory: 1G", "memory: 160M")
    fits = run_cli(["check", "--cpus", "2", "--import"], cwd=root, env=ENV)
    assert fits.returncode == 0 and "memory fit = floor((160 MiB - master 40 MiB" in fits.stdout, fits.stdout
    edit(root, "compose.yaml", 'GRACEFUL_TIMEOUT: "30"', 'GRACEFUL_TIMEOUT: "30"\n      PRELOAD: "on"')
    preloaded = run_cli(["check", "--cpus", "2", "--import"], cwd=root, env=ENV)
    assert preloaded.returncode == 1 and "PRELOAD on: the master holds the app too" in preloaded.stdout
    assert "error: FC201" in preloaded.stdout, preloaded.stdout


def test_exit_codes_json_and_ignore(tmp_path: Path) -> None:
    root = shop(tmp_path)
    clean = run_cli(["check", "--format", "json"], cwd=root, env=ENV)
    assert clean.returncode == 0 and json.loads(clean.stdout)["findings"] == []
    edit(root, "k8s/shop.yaml", "failureThreshold: 10", "failureThreshold: 5")
    warned = run_cli(["check"], cwd=root, env=ENV)
    assert warned.returncode == 0 and "warning: FC306" in warned.stdout and "0 error(s), 1 warning(s)." in warned.stdout
    edit(root, "k8s/shop.yaml", "containerPort: 8000", "containerPort: 8080")
    failed = run_cli(["check", "--format", "json"], cwd=root, env=ENV)
    assert failed.returncode == 1 and json.loads(failed.stdout)["errors"] == 1
    assert run_cli(["check", "--ignore", "FC304"], cwd=root, env=ENV).returncode == 0
    bad = run_cli(["check", "--format", "xml"], cwd=root, env=ENV)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_nothing_of_the_app_is_imported_without_import(tmp_path: Path) -> None:
    root = shop(tmp_path)
    (root / "shop" / "main.py").write_text((root / "shop" / "main.py").read_text() + "\nraise SystemExit('imported')\n")
    result = run_cli(["check"], cwd=root, env=ENV)
    assert result.returncode == 0 and "imported" not in result.stdout + result.stderr
    measured = run_cli(["check", "--import"], cwd=root, env=ENV)
    assert measured.returncode == 0, measured.stdout + measured.stderr
    assert "--import: shop.main:app could not be imported in a child process" in measured.stdout


def test_the_example_passes_clean() -> None:
    result = run_cli(["check", "--cpus", "2"], cwd=PROJECTS["example"])
    assert result.returncode == 0 and "0 error(s), 0 warning(s)." in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_file_init_writes_passes_clean(tmp_path: Path, name: str) -> None:
    project = copy_project(name, tmp_path)
    init = run_cli(["init", *INIT_ARGS.get(name, [])], cwd=project)
    if init.returncode == 9 and "does not exist" in init.stderr:
        init = run_cli(["init", "kubernetes", "server", "paas", *INIT_ARGS.get(name, [])], cwd=project)
    assert init.returncode == 0, init.stderr
    result = run_cli(["check", "--cpus", "2", "--format", "json"], cwd=project)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["findings"] == [], result.stdout
    assert {"k8s/deployment.yaml", "deploy/cloudrun/service.yaml", "swarm/stack.yaml"} <= set(report["read"])


def test_connections_against_a_live_server_with_few_connections(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    with (pg_cluster.data / "postgresql.conf").open("a") as conf:
        conf.write("max_connections = 20\nsuperuser_reserved_connections = 2\n")
    pg_cluster.start()
    root = shop(tmp_path)
    env = {**ENV, "DATABASE_URL": pg_cluster.url()}
    result = run_cli(["check", "--cpus", "2"], cwd=root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: FC101 up to 60 database connections at the peak, the server accepts 18" in result.stdout  # k8s
    assert "error: FC101 up to 30 database connections at the peak, the server accepts 18" in result.stdout  # unit
    shown = f"postgresql+asyncpg://{USER}:***@{pg_cluster.host}:{pg_cluster.port}/postgres"
    assert "max_connections 20 - superuser_reserved_connections 2" in result.stdout
    assert f"(read from {shown})" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    # Fixed: small pools, set where the deployment sets its environment.
    edit(
        root,
        "k8s/shop.yaml",
        'WEB_CONCURRENCY: "1"',
        'WEB_CONCURRENCY: "1"\n  DB_POOL_SIZE: "2"\n  DB_MAX_OVERFLOW: "0"',
    )
    edit(root, "deploy/shop.service", "WEB_CONCURRENCY=2", "WEB_CONCURRENCY=2 DB_POOL_SIZE=2 DB_MAX_OVERFLOW=0")
    fixed = run_cli(["check", "--cpus", "2"], cwd=root, env=env)
    assert fixed.returncode == 0 and "= 8 at the peak <= 18 the server accepts" in fixed.stdout, fixed.stdout


def test_an_unreachable_server_leaves_postgresqls_defaults_said_so(tmp_path: Path) -> None:
    root = shop(tmp_path)
    url = f"postgresql+asyncpg://shop:{PASSWORD}@127.0.0.1:{free_port()}/shop"
    result = run_cli(["check", "--cpus", "2"], cwd=root, env={**ENV, "DATABASE_URL": url})
    assert result.returncode == 0
    assert "PostgreSQL's defaults: max_connections 100 - superuser_reserved_connections 3 = 97" in result.stdout
    assert "not reachable" in result.stdout and PASSWORD not in result.stdout + result.stderr


def test_init_sizes_the_autoscalers_to_the_connection_budget(tmp_path: Path) -> None:
    example = copy_project("example", tmp_path)
    out = run_cli(["init", "kubernetes", "paas", "docker"], cwd=example).stdout
    assert "Note: the autoscaling maximum is 2 pods (Cloud Run: 3), not 10" in out  # 30 per pod: (97 - 2) // 30
    assert yaml.safe_load((example / "k8s/hpa.yaml").read_text())["spec"]["maxReplicas"] == 2
    service = yaml.safe_load((example / "deploy/cloudrun/service.yaml").read_text())
    assert service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"] == "3"
    single = copy_project("single", tmp_path)
    assert "autoscaling maximum" not in run_cli(["init", "kubernetes"], cwd=single).stdout  # no pool: 10
    assert yaml.safe_load((single / "k8s/hpa.yaml").read_text())["spec"]["maxReplicas"] == 10


def test_cloud_run_sets_port_to_the_container_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", ENV["DB_PASSWORD"])
    root = shop(tmp_path)
    (root / "cloudrun.yaml").write_text(
        """apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: shop
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/maxScale: "4"
    spec:
      containers:
        - image: shop
          ports:
            - containerPort: 8080
          resources:
            limits: {cpu: "1", memory: 512Mi}
"""
    )
    finding = only(check(root), "FC101")  # maxScale: 15 x 2 workers x 4 instances = 120 > 97
    assert "15 per worker x 2 worker(s) x (4 replica(s) (cloudrun.yaml:9)) = 120" in finding.arithmetic
    edit(root, "cloudrun.yaml", '"4"', '"3"')
    report = check(root)  # 90; and port 8080 is the app's: Cloud Run sets PORT to it
    assert report.findings == [], report.render()
