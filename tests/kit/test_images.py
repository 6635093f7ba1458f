"""The generated Dockerfile, built and run with podman for each kind of project.

The base image is a stand-in: Debian bookworm with Python 3.11 (debootstrap), tagged python:3.11-slim,
because nothing can be pulled here (tests/podmanctl.py). fastlaunch itself comes from a wheel of this
checkout, offered to the build through PIP_FIND_LINKS (the Dockerfile's documented build argument)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from podmanctl import BASE, CA, Podman, cleanup_netfilter, prepared
from projects import ENV_MARKER, PROJECTS, REPO, RUN_ENV, copy_project, init
from support import free_port, require_tool, wait_for_http

from fastlaunch.kit.project import python_files, routes_declared

# Cold builds (debootstrap, then each project) take minutes on a shared 2-core machine.
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
MiB = 1024 * 1024
RESULTS = REPO / "build" / "image-sizes.json"


@dataclass
class Built:
    name: str
    context: Path
    tag: str
    log: str
    probe: str  # a path that answers 200


class Images:
    """Each project's image is built once per session and shared by the tests below."""

    def __init__(self, podman: Podman, wheels: Path, workdir: Path) -> None:
        self.podman, self.wheels, self.workdir = podman, wheels, workdir
        self.built: dict[str, Built] = {}

    def build(self, context: Path, tag: str) -> str:
        return self.podman.build(
            context, tag, "-v", f"{self.wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels"
        )

    def get(self, name: str) -> Built:
        if name not in self.built:
            shutil.rmtree(self.workdir / name, ignore_errors=True)  # left by a build that failed earlier
            context = copy_project(name, self.workdir)
            init(context, "docker")
            tag = f"localhost/kit-{name}:latest"
            log = self.build(context, tag)
            # The same detection that decided the HEALTHCHECK: literal routes or fastlaunch.probes.
            probe = "/healthz" if "/healthz" in routes_declared(python_files(context)) else "/"
            self.built[name] = Built(name, context, tag, log, probe)
            size = self.podman.image_size(tag)
            RESULTS.parent.mkdir(exist_ok=True)
            sizes = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
            sizes[name] = {
                "bytes": size,
                "MB": round(size / 1e6, 1),
                "base_MB": round(self.podman.image_size(BASE) / 1e6, 1),
            }
            RESULTS.write_text(json.dumps(sizes, indent=2) + "\n")
            print(f"\nimage {tag}: {size / 1e6:.1f} MB (base {sizes[name]['base_MB']} MB)")
        return self.built[name]


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    for tool in ("podman", "runc", "debootstrap"):
        require_tool(tool, "builds and runs the generated images")
    yield prepared()
    cleanup_netfilter()


@pytest.fixture(scope="module")
def images(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Images:
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    return Images(podman, wheels, tmp_path_factory.mktemp("contexts"))


def pem_blocks(text: str) -> set[str]:
    return set(re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", text, re.S))


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_image_serves_as_non_root_without_env_or_build_ca(name: str, images: Images, podman: Podman) -> None:
    built = images.get(name)
    port = free_port()
    with podman.container(built.tag, run_args=[*RUN_ENV.get(name, []), "-p", f"127.0.0.1:{port}:8000"]) as cid:
        response = wait_for_http(f"http://127.0.0.1:{port}{built.probe}", timeout=60)
        assert response.status_code == 200, response.text
        status = podman("exec", cid, "cat", "/proc/1/status").stdout
        assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
        # .dockerignore kept the developer's .env (and its secret) out of the image.
        assert podman("exec", cid, "test", "-e", "/app/.env", check=False).returncode == 1
        found = podman("exec", "-u", "0", cid, "grep", "-rlF", ENV_MARKER, "/app", "/opt/venv", "/home", check=False)
        assert found.returncode == 1, found.stdout
        # The CA passed as a build secret is in no file of the image.
        base_bundle = podman("run", "--rm", "--pull=never", BASE, "cat", str(CA)).stdout
        extra = pem_blocks(podman.build_secret.read_text()) - pem_blocks(base_bundle)
        assert extra  # at least the marker certificate the secret always carries
        assert podman("exec", cid, "test", "-e", "/run/secrets/ca", check=False).returncode == 1
        for block in sorted(extra):
            line = block.splitlines()[1]
            hit = podman(
                "exec", "-u", "0", cid, "grep", "-rlF", line, "/etc", "/opt", "/app", "/root", "/home", check=False
            )
            assert hit.returncode == 1, f"build CA found in the image: {hit.stdout}"
        assert podman("exec", cid, "test", "-e", "/opt/venv/bin/pip", check=False).returncode == 1
        if built.probe == "/healthz":
            assert podman("healthcheck", "run", cid, check=False).returncode == 0


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_code_change_rebuild_reuses_the_dependency_layers(name: str, images: Images, podman: Podman) -> None:
    built = images.get(name)
    layers = json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", built.tag).stdout)
    sources = sorted(p for p in built.context.rglob("*.py") if "k8s" not in p.parts)
    app_file = next((p for p in sources if "FastAPI(" in p.read_text()), sources[0])
    app_file.write_text(app_file.read_text() + f"\n# changed at {time.time()}\n")
    log = images.build(built.context, built.tag)
    after = json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", built.tag).stdout)
    assert after[:-1] == layers[:-1], "a layer below the code changed"
    assert after[-1] != layers[-1], "the code layer did not change"
    cached = [line for line in log.splitlines() if "Using cache" in line]
    runs = [line for line in log.splitlines() if re.search(r"STEP \d+/\d+: RUN ", line)]
    assert len(cached) >= len(runs) > 0, log


def test_sqlite_alembic_image_migrates_as_the_app_user_and_keeps_data_in_a_volume(
    images: Images, podman: Podman
) -> None:
    """The tutorial setup (sqlite:///./notes.db, Alembic): the prestart step migrates as uid 10001 into /data,
    and a named volume there keeps the data when the container is replaced."""
    built = images.get("sqlite-alembic")
    volume = f"kit-notes-data-{free_port()}"
    port = free_port()
    run_args = ["-v", f"{volume}:/data", "-p", f"127.0.0.1:{port}:8000"]
    try:
        with podman.container(built.tag, run_args=run_args) as cid:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            # The table exists: the prestart step ran the migration, as the app user, in /data.
            assert httpx.post(f"http://127.0.0.1:{port}/notes", params={"body": "kept"}, timeout=5).status_code == 200
            owners = podman("exec", cid, "stat", "-c", "%u %n", "/data", "/data/notes.db").stdout.split("\n")
            assert [line.split()[0] for line in owners if line] == ["10001", "10001"], owners
            logs = podman("logs", cid)
            assert "under the file lock /data/notes.db.migrate.lock" in logs.stdout + logs.stderr
        with podman.container(built.tag, run_args=run_args):
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            assert httpx.get(f"http://127.0.0.1:{port}/notes", timeout=5).json() == ["kept"]
    finally:
        podman("volume", "rm", "-f", volume, check=False)


# The goal from the issue: the example service (FastAPI, SQLAlchemy, asyncpg, Alembic, fastlaunch) in at most
# 200 MB, measured on the stand-in base, which is trimmed like Debian's slim images (tests/podmanctl.py), plus
# the standard library's bytecode, which cuts the cold start by more than 30 % (README, bench.coldstart).
EXAMPLE_IMAGE_GOAL = 200e6
STDLIB_BYTECODE = (
    "import pathlib, sysconfig; "
    "print(sum(p.stat().st_size for p in pathlib.Path(sysconfig.get_path('stdlib')).rglob('*.pyc')))"
)


def test_example_image_size_meets_the_goal(images: Images, podman: Podman) -> None:
    built = images.get("example")
    size, base = podman.image_size(built.tag), podman.image_size(BASE)
    bytecode = int(podman("run", "--rm", "--pull=never", built.tag, "python", "-c", STDLIB_BYTECODE).stdout)
    assert 0 < bytecode < 15e6
    if size > EXAMPLE_IMAGE_GOAL + bytecode:
        biggest = podman(
            "run",
            "--rm",
            "--pull=never",
            "--entrypoint",
            "sh",
            built.tag,
            "-c",
            "du -sk /opt/venv/lib/python3*/site-packages/* | sort -n | tail -8",
        ).stdout
        pytest.fail(
            f"example image {size / 1e6:.1f} MB (base {base / 1e6:.1f} MB) > 200 MB + {bytecode / 1e6:.1f} MB of "
            f"standard library bytecode; largest:\n{biggest}"
        )


def test_the_standard_library_is_loaded_from_bytecode(images: Images, podman: Podman) -> None:
    """The base image ships no bytecode and PYTHONDONTWRITEBYTECODE keeps Python from writing it, so without
    the Dockerfile's compileall step every start compiles the server's standard-library imports again."""
    built = images.get("single")
    code = "import asyncio, email.message, http.client, json, logging.config, uuid"
    verbose = podman("run", "--rm", "--pull=never", built.tag, "python", "-v", "-c", code).stderr
    loaded = re.findall(r"^# code object from '?(\S+?)'?$", verbose, re.M)
    stdlib = [path for path in loaded if "/python3" in path and "-packages/" not in path]
    assert len(stdlib) > 20, verbose[-2000:]
    assert [path for path in stdlib if path.endswith(".py")] == []


# 256m: the CPU formula decides (max(1 x 1 CPU, 2) = 2); 96m: memory caps it (a worker needs ~45 MiB here).
@pytest.mark.parametrize(("memory", "cpus", "expected"), [("256m", "1", 2), ("96m", "1", 1)])
def test_workers_follow_the_container_limits(
    memory: str, cpus: str, expected: int, images: Images, podman: Podman
) -> None:
    built = images.get("single")
    limits = [f"--cpus={cpus}", f"--memory={memory}"]
    plan = json.loads(
        podman("run", "--rm", "--pull=never", *limits, built.tag, "fastlaunch", "workers", "--json").stdout
    )
    assert plan["cpus"] == int(cpus)
    assert plan["memory_limit"] == int(memory[:-1]) * MiB
    assert plan["workers"] == expected, plan["steps"]
    assert any(i["name"] == "memory limit" and i["source"].startswith("cgroup") for i in plan["inputs"]), plan
    port = free_port()
    with podman.container(built.tag, run_args=[*limits, "-p", f"127.0.0.1:{port}:8000"]) as cid:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        deadline = time.monotonic() + 60
        count = -1
        while time.monotonic() < deadline:  # the first worker boots alone, then the rest are forked
            children = podman("exec", cid, "cat", "/proc/1/task/1/children").stdout.split()
            count = len(children)
            if count == plan["workers"]:
                time.sleep(2)  # and stays there
                count = len(podman("exec", cid, "cat", "/proc/1/task/1/children").stdout.split())
                break
            time.sleep(0.5)
        assert count == plan["workers"], (plan["steps"], podman("logs", cid).stderr[-2000:])
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    print(f"\n--cpus={cpus} --memory={memory}: {plan['workers']} workers; " + "; ".join(plan["steps"]))


def test_kubernetes_deployment_starts_and_serves_under_podman_kube_play(
    images: Images, podman: Podman, tmp_path: Path
) -> None:
    """The rendered Deployment and ConfigMap, played as a local pod. Adjusted for a laptop: one replica, the
    locally built image (pull policy Never), a hostPort on 127.0.0.1. The Secret is left out (and its envFrom
    entry with it): podman 4.3's kube play cannot read a Secret from YAML; the sqlite app does not need it."""
    kubectl = require_tool("kubectl", "renders the kustomize base")
    built = images.get("sqlite")
    init(built.context, "kubernetes")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(built.context / "k8s")], capture_output=True, text=True, check=True
    ).stdout
    port = free_port()
    docs = [d for d in yaml.safe_load_all(rendered) if d["kind"] in ("ConfigMap", "Deployment")]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = 1
    web = deployment["spec"]["template"]["spec"]["containers"][0]
    web.update(image=built.tag, imagePullPolicy="Never")
    web["envFrom"] = [e for e in web["envFrom"] if "secretRef" not in e]
    web["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all(docs))
    podman("kube", "play", str(play))
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout=90).json() == {"status": "ready"}
        pod = podman("ps", "--filter", "label=app.kubernetes.io/component=web", "--format", "{{.Names}}").stdout
        name = next(n for n in pod.split() if not n.endswith("-infra"))
        status = podman("exec", name, "cat", "/proc/1/status").stdout
        assert re.search(r"^Uid:\s+10001\s", status, re.M), status
        assert podman("exec", name, "touch", "/app/x", check=False).returncode != 0  # read-only root filesystem
        # WEB_CONCURRENCY=1 from the ConfigMap: one worker under the master.
        assert len(podman("exec", name, "cat", "/proc/1/task/1/children").stdout.split()) == 1
    finally:
        podman("kube", "down", str(play), check=False)
