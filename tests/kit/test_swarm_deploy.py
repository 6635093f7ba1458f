"""`fastlaunch init swarm`, deployed for real: a single-node Docker Swarm (Debian's docker.io) in a network
namespace of its own (tests/swarmctl.py) runs the generated stack for the example service (PostgreSQL, Alembic).

The stack file is deployed as generated, with the variables and one-time steps its header tells a user to run
(a node label for the database, two `docker secret create`, IMAGE): nothing in it is overridden. It uses no
virtual IP and no ingress routing mesh (which need IPVS, absent from this kernel): the app and the database
resolve by DNS round robin, and the proxy publishes host-mode ports.

STAND-INS: postgres:16 and caddy:2 cannot be pulled here; tests/assets/standins builds look-alikes from the local
Debian base (Debian's PostgreSQL 15 behind the official image's POSTGRES_* / POSTGRES_PASSWORD_FILE contract,
Debian's Caddy 2.6), copied from podman into the swarm's daemon under the names the stack file uses."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from podmanctl import Podman, prepared
from projects import REPO, copy_project, init
from support import ASSETS, require_tool
from swarmctl import Swarm, host_docker_rules, swarm, wait

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
STACK = "posts-service"
IMAGE = "localhost/posts-service-swarm:1"
STANDINS = {"docker.io/library/postgres:16": "postgres", "docker.io/library/caddy:2": "caddy"}
CA_IN_PROXY = "/data/caddy/pki/authorities/local/root.crt"
REQUESTS = ASSETS / "swarm" / "requests.py"
# The rolling update's request loop: at most this many requests, for at most this long.
MAX_REQUESTS, MAX_SECONDS = 20000, 300


def build_images(podman: Podman, project: Path, tmp_path: Path) -> None:
    for tag, directory in STANDINS.items():  # layer cache: a second build takes a second
        podman("build", "--pull=never", "-t", tag, str(ASSETS / "standins" / directory))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    podman.build(project, IMAGE, "-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels")


def deploy(node: Swarm, project: Path, **env: str) -> None:
    node.docker(
        *("stack", "deploy", "--resolve-image", "never", "-c", str(project / "swarm/stack.yaml"), STACK),
        env={"IMAGE": IMAGE, **env},
    )


def converged(node: Swarm) -> bool:
    """Every service has as many healthy running tasks as it wants, and no update is in progress."""
    for name, wanted in (("db", 1), ("app", 2), ("proxy", 1)):
        running = [t for t in node.tasks(STACK, name) if t["DesiredState"] == "Running"]
        if len(running) != wanted or not all(t["CurrentState"].startswith("Running") for t in running):
            return False
    containers = node.docker("ps", "--filter", f"label=com.docker.stack.namespace={STACK}", "--format", "{{.Status}}")
    return "starting" not in containers.stdout and "unhealthy" not in containers.stdout


def requests(node: Swarm, cafile: Path, path: str, count: int, seconds: float, stop: Path) -> list[str]:
    url = f"https://localhost{path}"  # localhost: Caddy's internal CA certifies it; port 443 in the namespace
    return node.inside(sys.executable, str(REQUESTS), url, str(cafile), str(count), str(seconds), str(stop))


def get(node: Swarm, cafile: Path, path: str, tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        requests(node, cafile, path, 1, 30, tmp_path / "never"), capture_output=True, text=True, timeout=60
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def app_logs(node: Swarm) -> list[str]:
    ids = node.docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={STACK}_app").stdout.split()
    return [node.docker("logs", cid).stdout + node.docker("logs", cid).stderr for cid in ids]


def app_env(node: Swarm) -> list[str]:
    env: list[str] = node.service(STACK, "app")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]  # type: ignore[index]
    return env


def update_under_load(node: Swarm, project: Path, cafile: Path, workdir: Path, **env: str) -> dict[str, object]:
    """Deploy the stack again with ``env`` while a bounded loop sends requests through the proxy; returns what the
    loop saw and how the update ended (completed, or rolled back)."""
    workdir.mkdir()
    stop = workdir / "stop"
    loop = subprocess.Popen(
        requests(node, cafile, "/posts", MAX_REQUESTS, MAX_SECONDS, stop), stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # requests flowing before the update starts
        deploy(node, project, **env)

        def ended() -> str | None:
            status = node.service(STACK, "app").get("UpdateStatus")
            state = status.get("State") if isinstance(status, dict) else None
            assert state != "paused", status
            return state if state in ("completed", "rollback_completed") else None

        state = wait(ended, f"the update ({env})", 300, 1)
    finally:
        stop.touch()
        out, _ = loop.communicate(timeout=60)
    seen: dict[str, object] = json.loads(out)
    print(f"\nupdate {env}: {seen}")
    return {**seen, "state": state}


def test_generated_stack_deploys_serves_and_rolls_without_a_failed_request(tmp_path: Path) -> None:
    for tool in ("podman", "runc", "debootstrap", "dockerd", "containerd", "nsenter", "ip", "iptables"):
        require_tool(tool, "runs the generated stack on a single-node Docker Swarm")
    timings: dict[str, float] = {}
    podman = prepared()
    project = copy_project("example", tmp_path)
    init(project, "swarm")
    build_images(podman, project, tmp_path)

    rules_before = host_docker_rules()
    root = Path(tempfile.mkdtemp(prefix="fl-swarm-", dir="/var/tmp"))
    with swarm(root) as node:
        started = time.monotonic()
        node.load(podman, [IMAGE, *STANDINS])
        timings["load images"] = time.monotonic() - started
        # The one-time steps the stack file's header names.
        node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        node.docker("node", "update", "--label-add", f"{STACK}.db=true", node_id)
        password = secrets.token_urlsafe(18)
        for name, value in (("db_password", password), ("database_url", f"postgresql+asyncpg://app:{password}@db/app")):
            subprocess.run(
                [node.cli, "-H", f"unix://{node.socket}", "secret", "create", f"{STACK}_{name}", "-"],
                input=value,
                text=True,
                check=True,
                capture_output=True,
            )
        try:
            started = time.monotonic()
            deploy(node, project)
            wait(lambda: converged(node), "the stack deployed and healthy", 300, 1)
            timings["deploy to healthy"] = time.monotonic() - started

            # Through the proxy's host-mode port: TLS from Caddy's own CA, then a database-backed endpoint.
            proxy = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_proxy")
            ca = wait(
                lambda: node.docker("exec", proxy.stdout.strip(), "cat", CA_IN_PROXY, check=False).stdout,
                "Caddy's local CA",
                60,
            )
            cafile = tmp_path / "caddy-root.crt"
            cafile.write_text(str(ca))
            assert get(node, cafile, "/readyz", tmp_path)["statuses"] == {"200": 1}  # checks the database
            assert get(node, cafile, "/posts", tmp_path)["statuses"] == {"200": 1}
            # One task migrated; the other waited on the advisory lock and found the schema at head.
            logs = app_logs(node)
            assert sum("Running upgrade" in log for log in logs) == 1, logs
            assert all("Migrations are at head" in log for log in logs), logs
            # fastlaunch in a task reads the limits the stack sets for its worker plan.
            limits = yaml.safe_load((project / "swarm/stack.yaml").read_text())["services"]["app"]["deploy"]
            memory = int(limits["resources"]["limits"]["memory"].removesuffix("M")) * 1024 * 1024
            task = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_app").stdout
            plan = json.loads(
                node.docker("exec", task.split()[0], "fastlaunch", "workers", "--json", "--no-measure").stdout
            )
            assert (plan["memory_limit"], plan["cpus"], plan["workers"]) == (memory, 1, 1), plan
            # The secret never reaches the logs nor the service definition.
            assert not any(password in log for log in logs)
            assert password not in json.dumps(node.service(STACK, "app"))

            # A rolling update (a changed environment variable) under a bounded loop of requests.
            started = time.monotonic()
            seen = update_under_load(node, project, cafile, tmp_path / "update", LOG_LEVEL="warning")
            timings["rolling update"] = time.monotonic() - started
            assert seen["state"] == "completed" and seen["statuses"] == {"200": seen["sent"]}, seen
            assert int(str(seen["sent"])) > 20, seen
            assert "LOG_LEVEL=warning" in app_env(node)
            running = [t for t in node.tasks(STACK, "app") if t["DesiredState"] == "Running"]
            assert len(running) == 2

            # A release whose tasks cannot start (fastlaunch refuses the setting) is rolled back by Swarm
            # (failure_action: rollback), and the running tasks serve throughout (start-first).
            started = time.monotonic()
            seen = update_under_load(node, project, cafile, tmp_path / "rollback", LOG_LEVEL="loud")
            timings["failed release rolled back"] = time.monotonic() - started
            assert seen["state"] == "rollback_completed" and seen["statuses"] == {"200": seen["sent"]}, seen
            assert "LOG_LEVEL=warning" in app_env(node)
            print(f"\ntimings {timings}")
        finally:
            node.remove_stack(STACK)
    assert node.leftovers() == []
    assert host_docker_rules() == rules_before
