"""`fastlaunch init swarm`: the stack file's content, fitted to the project and the settings (the real deploy is
tests/kit/test_swarm_deploy.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from projects import copy_project, init
from support import run_cli

from fastlaunch.kit.cluster import DEFAULT_REPLICAS, EDGE_SUBNET


def stack(project: Path, **env: str) -> dict[str, Any]:
    result = run_cli(["init", "swarm"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    loaded: dict[str, Any] = yaml.safe_load((project / "swarm/stack.yaml").read_text())
    return loaded


def seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)s", value)
    assert match, value
    return int(match.group(1))


def test_the_app_rolls_start_first_and_rolls_back_on_failure(tmp_path: Path) -> None:
    project = copy_project("example", tmp_path)
    spec = stack(project)
    app = spec["services"]["app"]
    deploy = app["deploy"]
    assert deploy["replicas"] == DEFAULT_REPLICAS and deploy["endpoint_mode"] == "dnsrr"
    update = deploy["update_config"]
    assert (update["order"], update["failure_action"], update["parallelism"]) == ("start-first", "rollback", 1)
    health = app["healthcheck"]
    # An update fails when a new task turns unhealthy within the monitor window: room for every retry.
    assert seconds(update["monitor"]) > seconds(health["interval"]) * health["retries"]
    assert deploy["rollback_config"]["order"] == "start-first"
    assert "/healthz" in " ".join(health["test"])  # the example serves fastlaunch.probes
    assert app["environment"]["WEB_CONCURRENCY"] == "1"
    limits = deploy["resources"]["limits"]
    assert limits["cpus"] == "1" and re.fullmatch(r"\d+M", limits["memory"])
    assert deploy["resources"]["reservations"]["memory"] == limits["memory"]


def test_the_grace_period_covers_shutdown_delay_and_graceful_timeout(tmp_path: Path) -> None:
    project = copy_project("example", tmp_path)
    app = stack(project, SHUTDOWN_DELAY="7", GRACEFUL_TIMEOUT="40", STARTUP_TIMEOUT="90")["services"]["app"]
    env = app["environment"]
    assert (env["SHUTDOWN_DELAY"], env["GRACEFUL_TIMEOUT"], env["STARTUP_TIMEOUT"]) == ("7", "40", "90")
    assert seconds(app["stop_grace_period"]) > 7 + 40
    assert seconds(app["healthcheck"]["start_period"]) == 90


def test_secrets_are_docker_secrets_read_through_file_variables(tmp_path: Path) -> None:
    project = copy_project("example", tmp_path)
    spec = stack(project)
    app, db = spec["services"]["app"], spec["services"]["db"]
    assert app["environment"]["DATABASE_URL_FILE"] == "/run/secrets/database-url"
    # The image's SQLite default (the example's code has one) is cleared: the secret is the database.
    assert app["environment"]["DATABASE_URL"] == ""
    (secret,) = app["secrets"]
    assert secret["target"] == "database-url" and secret["uid"] == "10001" and secret["mode"] == 0o400
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert all(s["external"] for s in spec["secrets"].values())
    text = (project / "swarm/stack.yaml").read_text()
    assert "never-in-the-image" not in text  # the checkout's .env is not read into the file


def test_proxy_in_front_database_pinned_and_migrations_in_prestart(tmp_path: Path) -> None:
    project = copy_project("example", tmp_path)
    spec = stack(project)
    services = spec["services"]
    proxy, db, app = services["proxy"], services["db"], services["app"]
    assert {p["mode"] for p in proxy["ports"]} == {"host"} and proxy["deploy"]["mode"] == "global"
    assert proxy["networks"] == ["edge"] and "ports" not in app and "ports" not in db
    assert app["environment"]["FORWARDED_ALLOW_IPS"] == EDGE_SUBNET
    assert spec["networks"]["edge"]["ipam"]["config"] == [{"subnet": EDGE_SUBNET}]
    assert db["deploy"]["update_config"]["order"] == "stop-first"
    assert db["deploy"]["placement"]["constraints"] == ["node.labels.posts-service.db == true"]
    # Each task runs the advisory-locked prestart steps; no task skips them and no job runs them.
    assert app["command"] == ["fastlaunch", "run"]
    assert all(s.get("deploy", {}).get("mode") != "replicated-job" for s in services.values())
    caddyfile = (project / "swarm/Caddyfile").read_text()
    assert "dynamic a app 8000" in caddyfile
    assert spec["configs"]["caddyfile"]["file"] == "./Caddyfile"


def test_init_swarm_writes_the_dockerfile_it_runs(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    out = init(project, "swarm")
    assert (project / "Dockerfile").is_file() and (project / "swarm/stack.yaml").is_file()
    assert "docker stack config" in out


def test_a_project_without_a_database_gets_no_database_and_no_secrets(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)  # main.py + requirements.txt: FastAPI alone
    spec = stack(project)
    assert set(spec["services"]) == {"app", "proxy"}
    assert "secrets" not in spec and "backend" not in spec["networks"] and set(spec["volumes"]) == {"caddy-data"}
    app = spec["services"]["app"]
    assert "DATABASE_URL_FILE" not in app["environment"] and "secrets" not in app
    assert app["networks"] == ["edge"]
