from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from projects import copy_project, init
from support import FASTLAUNCH, free_port, require_tool, run_cli, running

from fastlaunch.render import TARGETS


def test_dry_run_prints_what_was_found_and_writes_nothing(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    out = init(project, "--dry-run")
    assert "dependencies  pep621 (pyproject.toml)" in out
    assert "app           app.main:app in app/main.py (pyproject.toml (" in out
    assert "python        3.11 (requires-python '>=3.11')" in out
    assert "/healthz      found" in out and "/readyz       found" in out
    assert "create     Dockerfile" in out and "create     k8s/deployment.yaml" in out
    assert not (project / "Dockerfile").exists() and not (project / "k8s").exists()


def test_writes_each_target_and_refuses_to_overwrite_a_changed_file(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)
    init(project)
    written = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    expected = {out.format(name="single") for files in TARGETS.values() for _, out in files}
    assert expected <= written

    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('CMD ["fastlaunch", "run"]', "CMD fastlaunch run"))
    mine = dockerfile.read_text()
    (project / "k8s/service.yaml").unlink()
    refused = run_cli(["init"], cwd=project)
    assert refused.returncode == 9, refused.stdout + refused.stderr
    assert '-CMD fastlaunch run\n+CMD ["fastlaunch", "run"]' in refused.stdout  # the diff
    assert "differs    Dockerfile" in refused.stdout and "create     k8s/service.yaml" in refused.stdout
    assert "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert dockerfile.read_text() == mine and not (project / "k8s/service.yaml").exists()  # nothing written

    forced = run_cli(["init", "docker", "--force"], cwd=project)
    assert forced.returncode == 0 and "overwrite  Dockerfile" in forced.stdout
    assert 'CMD ["fastlaunch", "run"]' in dockerfile.read_text()
    assert "unchanged  .dockerignore" in init(project, "docker")


def test_unknown_target_is_refused(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)
    result = run_cli(["init", "helm"], cwd=project)
    assert result.returncode == 9 and "Unknown target(s): helm" in result.stderr


def manifests(project: Path) -> dict[str, Any]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in (project / "k8s").glob("*.yaml")}


@pytest.mark.parametrize(("name", "readiness", "liveness"), [("sqlite", "/readyz", "/healthz"), ("poetry", None, None)])
def test_kubernetes_one_worker_per_pod_probes_and_shutdown(
    name: str, readiness: str | None, liveness: str | None, tmp_path: Path
) -> None:
    project = copy_project(name, tmp_path)
    init(project, "kubernetes", "--worker-memory", "200M")
    k8s = manifests(project)
    assert k8s["configmap"]["data"]["WEB_CONCURRENCY"] == "1"
    pod = k8s["deployment"]["spec"]["template"]["spec"]
    web = pod["containers"][0]
    # 200 MiB worker + 40 MiB master, 10% headroom, in 32 MiB steps.
    assert web["resources"]["limits"] == {"cpu": "1", "memory": "288Mi"}
    assert web["resources"]["requests"]["memory"] == "288Mi"
    ready, live = web["readinessProbe"], web["livenessProbe"]
    assert ready.get("httpGet", {}).get("path") == readiness and live.get("httpGet", {}).get("path") == liveness
    if readiness is None:
        assert ready["tcpSocket"] == {"port": "http"}  # no probe routes: fall back to the port
    assert web["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert pod["terminationGracePeriodSeconds"] > int(k8s["configmap"]["data"]["GRACEFUL_TIMEOUT"]) + 5
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert web["command"] == ["fastlaunch", "run", "--no-prestart"]  # the Job migrates, replicas do not race
    job = k8s["migrate-job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["fastlaunch", "prestart"]
    assert k8s["secret"]["stringData"]["DATABASE_URL"].startswith("postgresql://USER:PASSWORD@")


def test_kubernetes_manifests_validate_strictly_and_kustomize_renders(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl", "renders the kustomize base")
    project = copy_project("sqlite", tmp_path)
    init(project, "kubernetes", "--image", "registry.example.com/notes")
    validate = [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet"]
    files = sorted(str(p) for p in (project / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    for version in ("1.28.0", "1.37.0"):
        result = subprocess.run([*validate, "-k", version, *files], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    rendered = subprocess.run([kubectl, "kustomize", str(project / "k8s")], capture_output=True, text=True, check=False)
    assert rendered.returncode == 0, rendered.stderr
    docs = list(yaml.safe_load_all(rendered.stdout))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Secret",
            "Deployment",
            "Service",
            "Ingress",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Job",
        ]
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/notes:latest"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fastlaunch"
    (tmp_path / "all.yaml").write_text(rendered.stdout)
    result = subprocess.run([*validate, str(tmp_path / "all.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_procfile_web_command_listens_on_the_platform_port(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)
    init(project, "paas")
    command = (project / "Procfile").read_text().partition("web:")[2].strip()
    assert command == "fastlaunch run"
    app_yaml = yaml.safe_load((project / "app.yaml").read_text())
    assert app_yaml["entrypoint"] == command and app_yaml["runtime"] == f"python3{sys.version_info.minor}"
    port = free_port()
    # What a platform does: PORT in the environment, the Procfile line run by a shell. Heroku's is bash,
    # which execs a lone command, so the server is the process stopped by PID (dash would fork and orphan it).
    env = {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        "PATH": f"{Path(FASTLAUNCH).parent}:/usr/bin:/bin",
    }
    with running(
        ["bash", "-c", command], cwd=project, env=env, log=tmp_path / "web.log", ready_url=f"http://127.0.0.1:{port}/"
    ):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}


def test_poetry_project_without_a_lock_is_refused_with_the_fix(tmp_path: Path) -> None:
    project = copy_project("poetry", tmp_path)
    (project / "poetry.lock").unlink()
    result = run_cli(["init", "docker"], cwd=project)
    assert result.returncode == 9 and "poetry.lock, which does not exist" in result.stderr
    assert "poetry lock" in result.stderr and not (project / "Dockerfile").exists()
