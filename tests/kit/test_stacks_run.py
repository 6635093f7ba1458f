"""Each shape of tests/assets/stacks (and the SQLite project of tests/assets/init) taken through
`fastlaunch init`, then started with the real tools: `podman-compose up` (database, migrate, app) until an
endpoint that reads the database answers 200 through the stack, the generated Deployment under `podman kube
play` against a database container, and for the shapes without a database server, that none is started.

STAND-INS: postgres:16 is Debian's PostgreSQL behind the official image's POSTGRES_* contract
(tests/assets/standins/postgres, as in test_compose.py); mariadb:11 is Debian's MariaDB 10.11 behind the
official image's MARIADB_* contract and healthcheck.sh (tests/assets/standins/mariadb). test_compose.py says
why services are started one at a time in the order compose.yaml declares (podman 4.3 runs no health checks
and podman-compose ignores `service_healthy`). One image build per shape; the stand-in and base images are
shared with the other container tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from podmanctl import Podman, cleanup_netfilter, prepared
from projects import REPO
from support import ASSETS, free_port, require_tool, run_cli, until, wait_for_http

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
COMPOSE = str(Path(sys.executable).parent / "podman-compose")
PASSWORD = "throwaway-stack-password"
API_KEY = "throwaway-api-key"
# What `init` was asked to write, and what an operator sets (the .env.example names).
ENV = {"POSTGRES_PASSWORD": PASSWORD, "MARIADB_PASSWORD": PASSWORD, "API_KEY": API_KEY}
STANDINS = {"postgres:16": "postgres", "mariadb:11": "mariadb"}


@dataclass
class Stack:
    podman: Podman
    project: Path
    name: str  # the compose project's name (compose.yaml `name:`)

    def compose(self, *args: str, timeout: float = 600) -> None:
        done = subprocess.run(
            [COMPOSE, "-f", "compose.yaml", *args],
            cwd=self.project,
            env={**self.podman.env, **ENV},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"

    def container(self, service: str) -> str:
        return f"{self.name}_{service}_1"

    def services(self) -> dict[str, Any]:
        return dict(yaml.safe_load((self.project / "compose.yaml").read_text())["services"])

    def up(self) -> None:
        """db until healthy, migrate until it exits 0, then the app: the order compose.yaml declares."""
        services = self.services()
        if "db" in services:
            self.compose("up", "-d", "--no-deps", "db")
            db = self.container("db")
            until(lambda: self.podman("healthcheck", "run", db, check=False).returncode == 0, "db healthy")
        if "migrate" in services:
            assert services["app"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
            self.compose("up", "-d", "--no-deps", "migrate")
            migrate = self.container("migrate")
            code = self.podman("wait", migrate, timeout=300).stdout.strip()
            assert code == "0", self.podman("logs", migrate).stderr
        self.compose("up", "-d", "--no-deps", "app")

    def request(self, container: str, method: str, path: str, port: int = 8000) -> tuple[int, Any]:
        """A request from inside ``container`` (the app is not published; only the proxy would be)."""
        script = (
            "import json, sys, urllib.request, urllib.error\n"
            f"r = urllib.request.Request('http://127.0.0.1:{port}{path}', method='{method}', "
            f"headers={{'X-API-Key': '{API_KEY}'}})\n"
            "try:\n    resp = urllib.request.urlopen(r, timeout=10); print(resp.status); print(resp.read().decode())\n"
            "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n"
        )
        out = self.podman("exec", container, "python", "-c", script, check=False).stdout.split("\n", 1)
        if len(out) < 2 or not out[0].isdigit():
            raise ValueError(f"no answer from {container}: {out}")
        return int(out[0]), json.loads(out[1]) if out[1].strip().startswith(("{", "[")) else out[1]

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        """The first answer of the app container to ``path`` (its log in the failure when none comes)."""
        app = self.container("app")
        try:
            return until(lambda: self.request(app, method, path), f"an answer to {method} {path}")
        except AssertionError as exc:
            logs = self.podman("logs", app, check=False)
            raise AssertionError(f"{exc}\n{(logs.stdout + logs.stderr)[-3000:]}") from None

    def down(self) -> None:
        self.compose("down", "-v", "-t", "3", timeout=300)


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    for tool in ("podman", "runc", "debootstrap"):
        require_tool(tool, "runs the generated stacks")
    podman = prepared()
    for image, directory in STANDINS.items():
        tag = f"docker.io/library/{image}"
        if podman("image", "exists", tag, check=False).returncode != 0:
            podman("build", "--pull=never", "-t", tag, str(ASSETS / "standins" / directory))
    yield podman
    cleanup_netfilter()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    return wheels


def initialised(podman: Podman, wheels: Path, tmp_path: Path, shape: str, assets: Path = ASSETS / "stacks") -> Stack:
    project = tmp_path / shape
    shutil.copytree(assets / shape, project)
    result = run_cli(["init", "compose", "kubernetes"], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    name = yaml.safe_load((project / "compose.yaml").read_text())["name"]
    podman.build(
        project, f"localhost/{name}:latest", "-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels"
    )
    return Stack(podman, project, name)


def test_flat_package_on_asyncpg_under_compose_and_kube_play(podman: Podman, wheels: Path, tmp_path: Path) -> None:
    stack = initialised(podman, wheels, tmp_path, "flat-asyncpg")
    try:
        stack.up()
        status, body = stack.answer("POST", "/notes?body=kept")
        assert status == 200, body
        status, body = stack.request(stack.container("app"), "GET", "/notes")
        # NOTES_DB_URI, read by the app's BaseSettings, named the driver the project installs.
        assert (status, body) == (200, {"notes": ["kept"], "driver": "asyncpg"})
    finally:
        stack.down()
    kube_play(stack, tmp_path)


def kube_play(stack: Stack, tmp_path: Path) -> None:
    """The generated Deployment, ConfigMap and Secret as a local pod, against a database container on podman's
    network. Adjusted for a laptop as in test_images.py (one replica, the local image, a hostPort on 127.0.0.1);
    podman 4.3's kube play cannot read a Secret from YAML, so the Secret's entries, with the database's address
    and password in place of the placeholders, are played as a ConfigMap of the same name."""
    podman = stack.podman
    env = ["-e", "POSTGRES_USER=app", "-e", f"POSTGRES_PASSWORD={PASSWORD}", "-e", "POSTGRES_DB=app"]
    with podman.container("docker.io/library/postgres:16", run_args=["--network", "podman", *env]) as db:
        until(lambda: podman("exec", db, "pg_isready", "-U", "app", check=False).returncode == 0, "db", 90)
        address = podman("inspect", "--format", "{{.NetworkSettings.Networks.podman.IPAddress}}", db).stdout.strip()
        k8s = stack.project / "k8s"
        docs = [yaml.safe_load((k8s / f"{n}.yaml").read_text()) for n in ("configmap", "secret", "deployment")]
        config, secret, deployment = docs
        values = {
            k: v.replace("USER:PASSWORD@HOST", f"app:{PASSWORD}@{address}").replace("/DATABASE", "/app")
            for k, v in secret["stringData"].items()
        }
        assert values.pop("API_KEY") == "CHANGE-ME"
        values["API_KEY"] = API_KEY
        played_secret = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": secret["metadata"], "data": values}
        deployment["spec"]["replicas"] = 1
        web = deployment["spec"]["template"]["spec"]["containers"][0]
        port = free_port()
        web.update(image=f"localhost/{stack.name}:latest", imagePullPolicy="Never")
        web["envFrom"] = [{"configMapRef": e.get("configMapRef") or e["secretRef"]} for e in web["envFrom"]]
        web["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
        play = tmp_path / "play.yaml"
        play.write_text(yaml.safe_dump_all([config, played_secret, deployment]))
        podman("kube", "play", str(play))
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
            answer = wait_for_http(f"http://127.0.0.1:{port}/notes", timeout=30)
            assert answer.status_code == 200 and answer.json()["driver"] == "asyncpg", answer.text
        finally:
            podman("kube", "down", str(play), check=False)


def test_src_package_with_psycopg3_parts_and_nested_alembic(podman: Podman, wheels: Path, tmp_path: Path) -> None:
    stack = initialised(podman, wheels, tmp_path, "src-psycopg")
    try:
        stack.up()  # migrate ran src/alembic.ini from /app, the directory the project is run in
        logs = podman("logs", stack.container("migrate"))
        assert "Using src/alembic.ini" in logs.stdout + logs.stderr
        status, body = stack.answer("GET", "/items")
        assert (status, body) == (200, {"items": ["migrated"], "driver": "psycopg"})
    finally:
        stack.down()


def test_package_rooted_project_on_mariadb_with_parts(podman: Podman, wheels: Path, tmp_path: Path) -> None:
    stack = initialised(podman, wheels, tmp_path, "backend")
    try:
        stack.up()  # migrate waited for MariaDB through SQLAlchemy and PyMySQL (mysql+pymysql://)
        status, body = stack.answer("GET", "/visits")
        assert (status, body) == (200, {"visits": 1, "driver": "pymysql"})
    finally:
        stack.down()


@pytest.mark.parametrize(
    ("shape", "assets", "path"), [("nodb", "stacks", "/healthz"), ("sqlite-alembic", "init", "/notes")]
)
def test_no_database_server_for_no_database_and_sqlite(
    podman: Podman, wheels: Path, tmp_path: Path, shape: str, assets: str, path: str
) -> None:
    stack = initialised(podman, wheels, tmp_path, shape, ASSETS / assets)
    try:
        stack.up()
        status, body = stack.answer("GET", path)  # sqlite-alembic: migrated by the app's own prestart, in /data
        assert status == 200, body
        app = stack.container("app")
        running = podman("ps", "--filter", f"label=com.docker.compose.project={stack.name}", "--format", "{{.Names}}")
        assert running.stdout.split() == [app]  # no db, no migrate
        if shape == "nodb":  # it logs to logs/ under its code, which the image made writable for uid 10001
            assert "healthz" in podman("exec", app, "cat", "/app/logs/app.log").stdout
    finally:
        stack.down()
