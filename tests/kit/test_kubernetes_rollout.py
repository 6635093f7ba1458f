"""The generated Deployment's rollout timings come from the settings: SHUTDOWN_DELAY (no preStop hook) and
STARTUP_TIMEOUT (the startupProbe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from projects import copy_project
from support import run_cli


def generated(project: Path, **env: str) -> tuple[dict[str, Any], dict[str, str]]:
    result = run_cli(["init", "kubernetes"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    deployment = yaml.safe_load((project / "k8s/deployment.yaml").read_text())
    config = yaml.safe_load((project / "k8s/configmap.yaml").read_text())["data"]
    return deployment["spec"]["template"]["spec"], config


def test_startup_timeout_sizes_the_startup_probe_and_shutdown_delay_the_grace_period(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    pod, config = generated(project, STARTUP_TIMEOUT="301", SHUTDOWN_DELAY="12", GRACEFUL_TIMEOUT="30")
    web = pod["containers"][0]
    startup = web["startupProbe"]
    # The kubelet gives the container period x failureThreshold seconds before it restarts it.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 301
    assert startup["periodSeconds"] * (startup["failureThreshold"] - 1) < 301
    assert config["STARTUP_TIMEOUT"] == "301" and config["SHUTDOWN_DELAY"] == "12"
    assert pod["terminationGracePeriodSeconds"] == 12 + 30 + 5
    assert "lifecycle" not in web  # no preStop sleep: the server itself waits


def test_defaults_give_pods_a_shutdown_delay(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    pod, config = generated(project)
    assert int(config["SHUTDOWN_DELAY"]) > 0  # fastlaunch run's default is 0; a pod needs time for endpoints
    assert int(config["STARTUP_TIMEOUT"]) == 60
    startup = pod["containers"][0]["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 60
