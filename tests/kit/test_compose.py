"""`fastlaunch init compose`, brought up with podman-compose.

STAND-INS: postgres:16 and caddy:2 cannot be pulled here, so the test builds look-alikes from the local
Debian base (tests/assets/standins: Debian's PostgreSQL 15 behind the official image's POSTGRES_* contract,
and Debian's Caddy 2.6) and tags them with the names compose.yaml uses.

Debian 12's podman 4.3 runs no health checks without systemd and podman-compose ignores `service_healthy`
on podman < 4.6 (and its `--requires` chain fails to start the app after a finished one-shot service). So
the test walks the order compose.yaml declares itself, one service at a time with `--no-deps`: db until
its health check passes, migrate until it exits 0, then the app and the proxy. The order is read from the
generated file, so a change there changes what is tested."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from podmanctl import Podman, cleanup_netfilter, prepared
from projects import REPO
from support import ASSETS, free_port, require_tool, run_cli, until

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
STANDINS = {"postgres:16": "postgres", "caddy:2": "caddy"}
COMPOSE = str(Path(sys.executable).parent / "podman-compose")
NAME = "notes-pg"
PROXY_IP = "172.30.57.10"


def build_standins(podman: Podman) -> None:
    for image, directory in STANDINS.items():
        tag = f"docker.io/library/{image}"
        if podman("image", "exists", tag, check=False).returncode != 0:
            podman("build", "--pull=never", "-t", tag, str(ASSETS / "standins" / directory))


def container(podman: Podman, service: str) -> str:
    names = podman("ps", "-a", "--filter", f"label=com.docker.compose.project={NAME}", "--format", "{{.Names}}")
    found = [n for n in names.stdout.split() if n == f"{NAME}_{service}_1"]
    assert found, f"no container for {service}: {names.stdout}"
    return found[0]


def test_compose_migrates_once_serves_through_tls_and_keeps_data(tmp_path: Path) -> None:
    for tool in ("podman", "runc", "debootstrap"):
        require_tool(tool, "runs the generated compose file")
    podman = prepared()
    build_standins(podman)
    project = tmp_path / NAME
    shutil.copytree(ASSETS / "compose" / NAME, project)
    result = run_cli(["init", "compose"], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    spec = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    assert spec["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert spec["app"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert spec["app"]["environment"]["FORWARDED_ALLOW_IPS"] == PROXY_IP
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    podman.build(
        project, f"localhost/{NAME}:latest", "-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels"
    )

    https_port = free_port()
    env = {
        **podman.env,
        "POSTGRES_PASSWORD": "throwaway-test-password",
        "PROXY_BIND": "127.0.0.1",
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(free_port()),
    }

    def compose(*args: str, timeout: float = 600) -> None:
        done = subprocess.run(
            [COMPOSE, "-f", "compose.yaml", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"

    try:
        compose("up", "-d", "--no-deps", "db")
        db = container(podman, "db")
        until(lambda: podman("healthcheck", "run", db, check=False).returncode == 0, "db healthy")
        compose("up", "-d", "--no-deps", "migrate")
        migrate = container(podman, "migrate")
        assert podman("wait", migrate, timeout=300).stdout.strip() == "0", podman("logs", migrate).stderr
        compose("up", "-d", "--no-deps", "app", "proxy")

        proxy = container(podman, "proxy")
        root = "/data/caddy/pki/authorities/local/root.crt"
        ca = until(lambda: podman("exec", proxy, "cat", root, check=False).stdout, "Caddy's local CA", 60)
        (tmp_path / "caddy-root.crt").write_text(str(ca))
        tls = ssl.create_default_context(cafile=str(tmp_path / "caddy-root.crt"))
        sni = {"sni_hostname": "localhost"}
        base = f"https://127.0.0.1:{https_port}"
        with httpx.Client(verify=tls, headers={"Host": "localhost"}, timeout=10) as client:

            def get(path: str) -> httpx.Response:
                return client.get(base + path, extensions=sni)

            until(lambda: get("/healthz").status_code == 200, "the app through the proxy")
            added = client.post(base + "/notes", params={"text": "kept"}, extensions=sni)
            assert added.status_code == 200, added.text
            listed = get("/notes").json()
            assert listed["migrations"] == 1 and [n["text"] for n in listed["notes"]] == ["kept"]

            # Through the proxy: https, and the client address Caddy saw, not the proxy's own.
            seen = get("/whoami").json()
            assert seen["scheme"] == "https" and seen["client"] != PROXY_IP, seen
            # From another container straight to the app: its forwarded headers are ignored.
            direct = podman(
                "exec",
                db,
                "python3",
                "-c",
                "import urllib.request; r = urllib.request.Request('http://app:8000/whoami', headers="
                "{'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https'}); "
                "print(urllib.request.urlopen(r, timeout=10).read().decode())",
            )
            assert '"scheme":"http"' in direct.stdout and "203.0.113.9" not in direct.stdout, direct.stdout

            # The data survives restarting the database and the app (which does not migrate again).
            podman("restart", db)
            podman("restart", container(podman, "app"))
            after = until(lambda: get("/notes").raise_for_status().json(), "the app after restarts")
            assert after == listed, after
    finally:
        compose("down", "-v", "-t", "3", timeout=300)
        cleanup_netfilter()
