from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from projects import copy_project, init
from support import ASSETS, FASTLAUNCH, free_port, require_tool, run_cli, running

from fastlaunch.kit.dockerignore import Matcher, read_patterns
from fastlaunch.kit.lint import Instruction
from fastlaunch.kit.lint import parse as parse_dockerfile
from fastlaunch.kit.render import PLATFORM_PROXIES, TARGETS


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
    # The app's probe routes where it has them; without them, the port (never no probe, never a guessed route).
    for probe, path in ((web["readinessProbe"], readiness), (web["livenessProbe"], liveness)):
        expected = {"httpGet": {"path": path, "port": "http"}} if path else {"tcpSocket": {"port": "http"}}
        assert {k: v for k, v in probe.items() if k in ("httpGet", "tcpSocket")} == expected
    # SHUTDOWN_DELAY, not a preStop sleep (distroless images have no `sleep`); the grace period covers it.
    assert "lifecycle" not in web
    config = k8s["configmap"]["data"]
    assert config["SHUTDOWN_DELAY"] == "5"
    assert pod["terminationGracePeriodSeconds"] > int(config["SHUTDOWN_DELAY"]) + int(config["GRACEFUL_TIMEOUT"])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert web["command"] == ["fastlaunch", "run", "--no-prestart"]  # the Job migrates, replicas do not race
    job = k8s["migrate-job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["fastlaunch", "prestart"]
    # None of these projects installs a PostgreSQL driver: the Secret invents no database URL.
    assert "postgresql" not in (project / "k8s/secret.yaml").read_text()


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


def test_paas_files_say_when_the_dependencies_lack_fastlaunch(tmp_path: Path) -> None:
    # A buildpack installs requirements.txt only; unlike the Dockerfile, it cannot add fastlaunch itself.
    project = copy_project("single", tmp_path)
    out = init(project, "paas")
    assert "Note: Procfile and app.yaml run `fastlaunch run`, but requirements.txt does not list fastlaunch" in out
    with (project / "requirements.txt").open("a") as requirements:
        requirements.write("fastlaunch\n")
    assert "Note:" not in init(project, "paas", "--force")
    assert "Note:" not in init(copy_project("sqlite", tmp_path / "b"), "docker")


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


# -- Dockerfile and .dockerignore (rendered, not built: tests/test_images.py builds them)


def stages(dockerfile: str) -> list[list[Instruction]]:
    """The Dockerfile's instructions, one list per stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in parse_dockerfile(dockerfile):
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction} comes before the first FROM"
        result[-1].append(instruction)
    return result


def stage_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            pairs = zip(instruction.value[::2], instruction.value[1::2], strict=True)
            env.update((key, " ".join(shlex.split(value))) for key, value in pairs)
    return env


def python312_project(root: Path, source: str) -> Path:
    """A service whose Python 3.12 comes from requires-python or from .python-version (over requires-python)."""
    project = root / "py312"
    project.mkdir()
    (project / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    requires = "~=3.12" if source == "requires-python" else ">=3.11"
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "py312"\nrequires-python = "{requires}"\ndependencies = ["fastapi"]\n'
    )
    if source == ".python-version":
        (project / ".python-version").write_text("3.12.4\n")
    return project


@pytest.mark.parametrize("source", ["requires-python", ".python-version"])
def test_dockerfile_stages_use_the_projects_python_and_the_final_one_sets_the_python_env(
    source: str, tmp_path: Path
) -> None:
    project = python312_project(tmp_path, source)
    assert "python        3.12 (" in init(project, "docker")
    builder, final = stages((project / "Dockerfile").read_text())
    assert builder[0].value == ("python:3.12-slim", "AS", "builder") and final[0].value == ("python:3.12-slim",)
    env = stage_env(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")  # the builder's venv, copied into this stage
    assert next(i.value for i in final if i.keyword == "CMD" and i.json) == ("fastlaunch", "run")


@pytest.mark.parametrize(("name", "healthz"), [("single", True), ("poetry", False)])
def test_dockerfile_healthcheck_only_when_the_app_has_healthz(name: str, healthz: bool, tmp_path: Path) -> None:
    project = copy_project(name, tmp_path)
    init(project, "docker")
    *_, final = stages((project / "Dockerfile").read_text())
    checks = [" ".join(i.value) for i in final if i.keyword == "HEALTHCHECK"]
    if healthz:
        assert len(checks) == 1 and "/healthz" in checks[0]
    else:
        assert checks == []  # probing a route the app lacks would mark every container unhealthy


def test_dockerignore_keeps_secrets_history_and_local_state_out_at_any_depth(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    init(project, "docker")
    lines = (project / ".dockerignore").read_text().splitlines()
    assert {"**/.env", ".git", ".venv"} <= set(lines)
    ignored = Matcher(read_patterns("\n".join(lines))).ignored
    for path in (
        ".env",
        ".env.production",
        "app/.env",
        "app/settings/.env.local",
        ".git/config",
        ".venv/bin/python",
        "posts.db",
        "data/app.db",
        "__pycache__/main.cpython-312.pyc",
        "app/__pycache__/main.cpython-312.pyc",
        "app/legacy.pyc",
        "certs/server.key",
    ):
        assert ignored(path), f"{path} would be sent to the build and copied into the image"
    for path in ("app/main.py", "app/__init__.py", "pyproject.toml", ".env.example", "app/.env.example", "README.md"):
        assert not ignored(path), f"{path} would be missing from the image"


# -- Kubernetes: the objects refer to each other by name, label and port


@pytest.mark.parametrize("source", ["base", "kustomize"])
def test_kubernetes_objects_select_and_route_to_each_other(source: str, tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    init(project, "kubernetes", "--domain", "notes.example.org")
    if source == "kustomize":  # what `kubectl apply -k` sends
        kubectl = require_tool("kubectl", "renders the kustomize base")
        out = subprocess.run([kubectl, "kustomize", str(project / "k8s")], capture_output=True, text=True, check=True)
        docs = list(yaml.safe_load_all(out.stdout))
    else:
        docs = [yaml.safe_load(p.read_text()) for p in (project / "k8s").glob("*.yaml")]
    k8s = {d["kind"]: d for d in docs if d["kind"] != "Kustomization"}
    deployment, service, ingress = k8s["Deployment"], k8s["Service"], k8s["Ingress"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = k8s["Job"]["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    # The Service and the PDB take the web pods, never the migration Job's pod.
    for selector in (service["spec"]["selector"], k8s["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selects(selector, pod_labels) and not selects(selector, job_labels), selector

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (service_port,) = service["spec"]["ports"]
    target = service_port["targetPort"]
    (container_port,) = [
        p["containerPort"] for p in container["ports"] if target in (p.get("name"), p["containerPort"])
    ]
    assert container_port == int(k8s["ConfigMap"]["data"]["PORT"])  # where fastlaunch listens
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert refs == {
        "configMapRef": k8s["ConfigMap"]["metadata"]["name"],
        "secretRef": k8s["Secret"]["metadata"]["name"],
    }

    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == ["notes.example.org"]
    # cert-manager writes the certificate there: it must not be the app's own Secret.
    assert tls["secretName"] and tls["secretName"] != k8s["Secret"]["metadata"]["name"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "notes.example.org"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] in ({"name": service_port.get("name")}, {"number": service_port["port"]})

    hpa = k8s["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # A PDB that needs every replica up would block node drains forever.
    assert k8s["PodDisruptionBudget"]["spec"]["minAvailable"] < min(hpa["minReplicas"], deployment["spec"]["replicas"])


# -- PaaS


def test_cloud_run_service_is_a_knative_service_that_runs_the_images_fastlaunch(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    image = "europe-docker.pkg.dev/acme/notes/notes-service"
    init(project, "docker", "paas", "--image", image)
    service = yaml.safe_load((project / "deploy/cloudrun/service.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    assert service["metadata"]["name"] == "notes-service"
    spec = service["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == image
    (port,) = container["ports"]
    *_, final = stages((project / "Dockerfile").read_text())
    assert (str(port["containerPort"]),) == next(i.value for i in final if i.keyword == "EXPOSE")
    # No command or args: Cloud Run runs the image's CMD, fastlaunch run.
    assert "command" not in container and "args" not in container
    assert next(i.value for i in final if i.keyword == "CMD" and i.json) == ("fastlaunch", "run")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "PORT" not in env  # Cloud Run sets PORT (to containerPort) itself and rejects a service that sets it
    assert env["WEB_CONCURRENCY"] == "1"
    assert spec["timeoutSeconds"] == 120  # the TIMEOUT setting's default
    assert container["startupProbe"]["httpGet"]["path"] == container["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("source", ["requires-python", ".python-version"])
def test_app_engine_runtime_follows_the_projects_python(source: str, tmp_path: Path) -> None:
    project = python312_project(tmp_path, source)
    init(project, "paas")
    # App Engine sets PORT; `fastlaunch run` listens on it (test_procfile_web_command_listens_on_the_platform_port).
    assert yaml.safe_load((project / "app.yaml").read_text()) == {
        "runtime": "python312",
        "entrypoint": "fastlaunch run",
        "instance_class": "F2",
        "env_variables": {"FORWARDED_ALLOW_IPS": PLATFORM_PROXIES},
    }


def client_seen(allow: str, tmp_path: Path, forwarded_for: str) -> str:
    """The client address the app sees through a real fastlaunch run, for a request with this X-Forwarded-For."""
    app = tmp_path / f"app{len(list(tmp_path.iterdir()))}"
    shutil.copytree(ASSETS / "lifecycle", app)
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "FORWARDED_ALLOW_IPS": allow}
    url = f"http://127.0.0.1:{port}/scope"
    with running([FASTLAUNCH, "run"], cwd=app, env=env, log=tmp_path / "run.log", ready_url=url):
        response = httpx.get(url, headers={"X-Forwarded-For": forwarded_for}, timeout=5)
    return str(response.json()["client"])


@pytest.mark.parametrize(("target", "path"), [("kubernetes", "k8s/configmap.yaml"), ("paas", "app.yaml")])
def test_forwarded_allow_ips_trusts_the_proxies_so_a_client_cannot_forge_its_address(
    target: str, path: str, tmp_path: Path
) -> None:
    project = copy_project("single", tmp_path)
    init(project, target)
    document = yaml.safe_load((project / path).read_text())
    allow = (document.get("data") or document["env_variables"])["FORWARDED_ALLOW_IPS"]
    assert "*" not in allow.split(",")
    # The request reaches fastlaunch from 127.0.0.1, which both lists trust (a sidecar proxy, the platform's local
    # hop), through two proxies: the outer one appended the real client (203.0.113.9) to what the client forged
    # (6.6.6.6), the inner one (an address the generated list trusts) appended the outer one's.
    inner = "10.0.0.5" if target == "kubernetes" else "35.191.0.1"
    chain = f"6.6.6.6, 203.0.113.9, {inner}"
    assert client_seen(allow, tmp_path, chain) == "203.0.113.9"
    # Why not "*": only the nearest hop is then trusted, so the client would be the inner proxy.
    assert client_seen("*", tmp_path, chain) == inner
