"""Renders the deployment files of ``fastlaunch init`` from the Jinja2 templates in ``templates/`` and
writes them without ever overwriting a changed file unless forced."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from fastlaunch import __version__
from fastlaunch.core.exceptions import InitError
from fastlaunch.core.settings import Settings
from fastlaunch.kit.check.connections import MIGRATION_CONNECTIONS, demand
from fastlaunch.kit.check.pools import read_pools
from fastlaunch.kit.check.server import default_limit
from fastlaunch.kit.cluster import cluster_context
from fastlaunch.kit.deploy_env import warnings
from fastlaunch.kit.dockerignore import read_patterns
from fastlaunch.kit.project import DATA_DIR, Project, python_files
from fastlaunch.kit.requirements import SELF_GREP, requirement_lines, requirement_names
from fastlaunch.launcher.workers import HEADROOM_FRACTION, MiB, PlanRequest, Sourced, compute_workers

# FORWARDED_ALLOW_IPS behind a cluster's ingress: the private ranges pod networks use (RFC 1918, the RFC 6598
# shared range some clouds use, IPv6 unique-local) and loopback for sidecar proxies. A list, not "*": fastlaunch's
# worker reads X-Forwarded-For from the right and skips every trusted proxy, so the client is found behind a cloud
# load balancer and the ingress both; "*" trusts only the peer's own entry, the load balancer's address there
# (worker/forwarded.py). Under "*", another WORKER_CLASS (Uvicorn's) takes the leftmost entry, which clients write.
CLUSTER_PROXIES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7,127.0.0.1,::1"
# Cloud Run and App Engine: Google's front end reaches the instance over link-local addresses, and its load
# balancers from Google's documented proxy ranges.
PLATFORM_PROXIES = "169.254.0.0/16,35.191.0.0/16,130.211.0.0/22,127.0.0.1"
UID = 10001  # the image's non-root user; numeric so Kubernetes can verify runAsNonRoot
DEFAULT_WORKER_MEMORY = 128 * MiB  # when WORKER_MEMORY is unset: a FastAPI worker with a few libraries
MASTER_MEMORY = 40 * MiB
# SHUTDOWN_DELAY in the pods when the project sets none: endpoints are removed asynchronously after SIGTERM,
# and kube-proxy and ingress controllers take a few seconds to stop sending to the pod.
K8S_SHUTDOWN_DELAY = 5
STARTUP_PROBE_PERIOD = 2
MIN_REPLICAS, MAX_REPLICAS = 2, 10
SURGE = 1  # the Deployment's maxSurge
K8S_FILES = ("kustomization", "configmap", "secret", "deployment", "service", "ingress", "hpa", "pdb", "migrate-job")

# target -> (template, output path); {name} is the project's name.
TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "docker": (("docker/Dockerfile.j2", "Dockerfile"), ("docker/dockerignore.j2", ".dockerignore")),
    "compose": (
        ("compose/compose.yaml.j2", "compose.yaml"),
        ("compose/Caddyfile.j2", "Caddyfile"),
        ("compose/env.example.j2", ".env.example"),
    ),
    "kubernetes": tuple((f"kubernetes/{n}.yaml.j2", f"k8s/{n}.yaml") for n in K8S_FILES),
    "server": (
        ("server/systemd.service.j2", "deploy/server/{name}.service"),
        ("server/supervisor.conf.j2", "deploy/server/{name}-supervisor.conf"),
        ("server/nginx.conf.j2", "deploy/server/{name}-nginx.conf"),
        ("server/README.md.j2", "deploy/server/README.md"),
    ),
    "paas": (
        ("paas/Procfile.j2", "Procfile"),
        ("paas/app.yaml.j2", "app.yaml"),
        ("paas/service.yaml.j2", "deploy/cloudrun/service.yaml"),
    ),
    "swarm": (("swarm/stack.yaml.j2", "swarm/stack.yaml"), ("swarm/Caddyfile.j2", "swarm/Caddyfile")),
    "nomad": (("nomad/job.nomad.hcl.j2", "deploy/nomad/{name}.nomad.hcl"),),
}
# How to create the file the Dockerfile installs from, per manager, when it is missing.
LOCK_HINTS = {
    "poetry": "Run `poetry lock` to create poetry.lock, then run again.",
    "pdm": "Run `pdm lock` to create pdm.lock, then run again.",
    "uv": "Run `uv lock` to create uv.lock, then run again.",
    "requirements": "Create the requirements file(s) it names, or fix the -r/-c line, then run again.",
}
# Tools a production image has no use for, seen in a requirements file it installs.
DEV_TOOLS = frozenset({"pytest", "ruff", "mypy", "black", "flake8", "isort", "pre-commit", "coverage", "pylint", "tox"})
# Other names a target is known by (the folder `init kubernetes` writes is k8s/).
ALIASES = {"k8s": "kubernetes", "kube": "kubernetes", "docker-compose": "compose"}
# Files a target cannot work without: compose builds the image from the Dockerfile, Swarm and Nomad run it.
REQUIRES = {"compose": ("docker",), "swarm": ("docker",), "nomad": ("docker",)}
# Files whose existing content is kept and completed rather than replaced.
MERGED = frozenset({".dockerignore", ".env.example"})
# What to run on each target's files once written.
CHECKS = {
    "docker": "fastlaunch lint Dockerfile",
    "kubernetes": "kubectl kustomize k8s (renders them; kubectl apply -k k8s --dry-run=server checks them)",
    "server": "systemd-analyze verify deploy/server/*.service",
    "swarm": "docker stack config -c swarm/stack.yaml (Docker 23+; the docs show the one-time secrets)",
    "nomad": "nomad job validate deploy/nomad/*.nomad.hcl",
}


@dataclass(frozen=True)
class ServerOptions:
    """Where the classic-server files put things; tests point them at temporary directories."""

    install_dir: str
    venv: str
    user: str | None
    port: int = 8000
    http_port: int = 80
    https_port: int = 443
    certificate: str = ""
    certificate_key: str = ""
    log_dir: str = "/var/log/supervisor"


@dataclass(frozen=True)
class Options:
    domain: str = "example.com"
    image: str = ""  # registry/name for Kubernetes and Cloud Run; default: the project's name
    server: ServerOptions | None = None


@dataclass(frozen=True)
class Resources:
    """One worker per container: memory for the master and one worker plus the plan's headroom."""

    memory: str
    cpu_request: str
    cpu_limit: str
    note: str


@dataclass(frozen=True)
class Change:
    path: Path
    status: Literal["create", "unchanged", "merge", "update"]
    content: str
    diff: list[str] = field(default_factory=list)


@cache
def environment() -> jinja2.Environment:
    options: dict[str, Any] = {}
    options.setdefault("loader", jinja2.PackageLoader("fastlaunch.kit", "templates"))
    options.setdefault("undefined", jinja2.StrictUndefined)  # a missing value is a bug, not an empty string
    options.setdefault("trim_blocks", True)
    options.setdefault("lstrip_blocks", True)
    options.setdefault("keep_trailing_newline", True)
    options.setdefault("autoescape", False)  # config files, not HTML
    return jinja2.Environment(**options)


def pod_resources(settings: Settings) -> Resources:
    worker = settings.worker_memory or DEFAULT_WORKER_MEMORY
    # The smallest limit (in 32 MiB steps) in which the worker plan fits exactly the one worker.
    limit = math.ceil((MASTER_MEMORY + worker) / (1 - HEADROOM_FRACTION) / (32 * MiB)) * 32 * MiB
    plan = compute_workers(
        PlanRequest(
            affinity_cpus=1,
            cpu_quota=Sourced(1.0, "the pod's CPU limit"),
            memory_limit=Sourced(limit, "the pod's memory limit"),
            web_concurrency=Sourced(1, "ConfigMap"),
            worker_memory=Sourced(worker, "WORKER_MEMORY" if settings.worker_memory else "fastlaunch init default"),
            master_memory=MASTER_MEMORY,
        )
    )
    if plan.workers != 1 or plan.warnings:  # pragma: no cover - guards the arithmetic above
        raise InitError(f"Resource sizing failed: {'; '.join(plan.steps + plan.warnings)}")
    note = (
        f"1 worker x {worker // MiB} MiB + master {MASTER_MEMORY // MiB} MiB + {HEADROOM_FRACTION:.0%} headroom "
        f"-> {limit // MiB}Mi (set WORKER_MEMORY when running fastlaunch init to resize)"
    )
    return Resources(memory=f"{limit // MiB}Mi", cpu_request="250m", cpu_limit="1", note=note)


def replica_budget(project: Project) -> tuple[int, str]:
    """How many one-worker pods fit PostgreSQL's default connection budget with the pools the app opens, the
    migration Job included (at most MAX_REPLICAS + SURGE), and the arithmetic."""
    pools = read_pools(project.root, python_files(project.root), {})
    need = demand(pools)
    if not pools or not need.per_worker:
        return MAX_REPLICAS + SURGE, "no database pool found in the code"
    migration = MIGRATION_CONNECTIONS if project.alembic else 0
    pods = (default_limit("").usable - migration) // need.per_worker
    note = (
        f"database connections: floor(({default_limit('').usable} PostgreSQL accepts by default - {migration} for the "
        f"migration) / {need.per_worker} per pod) = {pods} pods"
    )
    return max(1, min(MAX_REPLICAS + SURGE, pods)), note


def context(project: Project, settings: Settings, options: Options) -> dict[str, Any]:
    resources = pod_resources(settings)
    pods, replicas_note = replica_budget(project)
    max_replicas = max(1, min(MAX_REPLICAS, pods - SURGE))
    shutdown_delay = settings.shutdown_delay if settings.is_set("shutdown_delay") else K8S_SHUTDOWN_DELAY
    server = options.server or ServerOptions(
        install_dir=f"/srv/{project.name}", venv=f"/srv/{project.name}/.venv", user=project.name
    )
    return {
        "version": __version__,
        "project": project,
        "uid": UID,
        "port": 8000,
        "domain": options.domain,
        "image": options.image or project.name,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "shutdown_delay": shutdown_delay,
        "termination_grace": shutdown_delay + settings.graceful_timeout + 5,
        "startup_timeout": settings.startup_timeout,
        "startup_period": STARTUP_PROBE_PERIOD,
        # The kubelet restarts a container whose startupProbe failed this many times in a row.
        "startup_failures": max(1, math.ceil(settings.startup_timeout / STARTUP_PROBE_PERIOD)),
        "readiness_path": "/readyz" if project.readyz else ("/healthz" if project.healthz else None),
        "liveness_path": "/healthz" if project.healthz else None,
        "memory": resources.memory,
        "cpu_request": resources.cpu_request,
        "cpu_limit": resources.cpu_limit,
        "resources_note": resources.note,
        "replicas": min(MIN_REPLICAS, max_replicas),
        "max_replicas": max_replicas,
        "replicas_note": replicas_note,
        "max_scale": min(MAX_REPLICAS, pods),
        "subnet": "172.30.57.0/24",
        "proxy_ip": "172.30.57.10",
        "server": server,
        "upstream_name": project.name.replace("-", "_"),
        "data_dir": DATA_DIR,
        "cluster_proxies": CLUSTER_PROXIES,
        "env_required": env_required(project),
        "self_grep": SELF_GREP,
        "platform_proxies": PLATFORM_PROXIES,
        **cluster_context(project, resources.memory),
    }


def env_required(project: Project) -> list[str]:
    """The variables compose.yaml requires to be set: the database password, the app's unfilled settings."""
    names = [
        f"{'POSTGRES' if db.backend == 'postgresql' else 'MARIADB'}_PASSWORD" for db in [project.server_database] if db
    ]
    return names + [e.name for e in project.environment if not e.filled and e.name not in names]


def expand(targets: list[str]) -> list[str]:
    targets = [ALIASES.get(t, t) for t in targets]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise InitError(
            f"Unknown target(s): {', '.join(unknown)}.", hint=f"Choose from: {', '.join(TARGETS)} (or none for all)."
        )
    chosen = list(targets or TARGETS)
    for target in list(chosen):
        chosen[:0] = [r for r in REQUIRES.get(target, ()) if r not in chosen]
    return chosen


def render(project: Project, settings: Settings, targets: list[str], options: Options | None = None) -> dict[str, str]:
    """Output path (relative to the project) -> content."""
    chosen = expand(targets)
    missing = [f for f in project.dependency_files if not (project.root / f).is_file()]
    if "docker" in chosen and missing:
        raise InitError(
            f"The Dockerfile installs the dependencies from {', '.join(missing)}, which does not exist in "
            f"{project.root}.",
            hint=LOCK_HINTS.get(project.manager, "Create the missing file(s), then run again."),
        )
    values = context(project, settings, options or Options())
    env = environment()
    files: dict[str, str] = {}
    for target in chosen:
        for template, output in TARGETS[target]:
            try:
                files[output.format(name=project.name)] = env.get_template(template).render(values)
            except jinja2.TemplateError as exc:  # pragma: no cover - a broken template is a fastlaunch bug
                raise InitError(f"Template {template} failed to render: {exc}") from None
    return files


def notes(project: Project, targets: list[str]) -> list[str]:
    """What the user still has to do for the written files to work."""
    found: list[str] = []
    chosen = expand(targets)
    if "kubernetes" in chosen or "paas" in chosen:
        pods, why = replica_budget(project)
        if pods < MAX_REPLICAS + SURGE:
            found.append(
                f"the autoscaling maximum is {max(1, min(MAX_REPLICAS, pods - SURGE))} pods (Cloud Run: "
                f"{min(MAX_REPLICAS, pods)}), not {MAX_REPLICAS}: {why}. Raise max_connections (or put PgBouncer "
                "in front), then raise it; `fastlaunch check` shows the arithmetic."
            )
    if "paas" in chosen and not project.declares_fastlaunch:
        # The Dockerfile (and so Cloud Run) installs fastlaunch itself; a buildpack installs only the dependencies.
        found.append(
            f"Procfile and app.yaml run `fastlaunch run`, but {', '.join(project.dependency_files)} does not list "
            f"fastlaunch: add fastlaunch=={__version__} to the dependencies."
        )
    if project.manager == "requirements" and "docker" in expand(targets):
        installed = requirement_names(requirement_lines(project.root, project.requirements))
        if tools := sorted(DEV_TOOLS & installed):
            found.append(
                f"{', '.join(project.requirements.files)} install(s) development tools ({', '.join(tools)}): the "
                "image carries them too; move them to a requirements-dev.txt that requirements.txt does not include."
            )
    return found


def setting_warnings(project: Project, targets: list[str]) -> list[str]:
    """One line per setting the app requires that the compose file and the Secret could only hold a
    placeholder for."""
    if not {"compose", "kubernetes"} & set(expand(targets)):
        return []
    return warnings(project.environment)


def write_warnings(project: Project) -> list[str]:
    """Writes whose path the code builds at run time: the image cannot know which directory to open up."""
    return [
        f"{u.where} writes to {u.code}, a path known only at run time: under /app, only the directories listed "
        f"as 'writes' are writable for the image's user (uid {UID}); point it at /tmp or a volume."
        for u in project.writes.unresolved
    ]


def merge_env_example(current: str, generated: str) -> str:
    """The project's .env.example with the variables it lacks appended: its own lines and values stay."""
    have = {line.split("=", 1)[0].strip() for line in current.splitlines() if "=" in line}
    missing = [line for line in generated.splitlines() if "=" in line and line.split("=", 1)[0] not in have]
    if not missing:
        return current
    header = f"# Added by fastlaunch {__version__} (`fastlaunch init compose`): required by compose.yaml or the app."
    return current.rstrip("\n") + "\n\n" + "\n".join([header, *missing]) + "\n"


def merge_ignore(current: str, generated: str) -> str:
    """The project's .dockerignore with the generated patterns it lacks appended after its own: its lines
    stay as they were, and ours come last so that no earlier `!` line of the project re-includes a secret."""
    have = set(read_patterns(current))
    missing = [line for line in generated.splitlines() if line.strip() and not line.startswith("#")]
    missing = [line for line in missing if read_patterns(line)[0] not in have]
    if not missing:
        return current
    header = f"# Added by fastlaunch {__version__} (`fastlaunch init docker`): secrets, history and local state."
    return current.rstrip("\n") + "\n\n" + "\n".join([header, *missing]) + "\n"


def next_steps(targets: list[str]) -> list[str]:
    """How to check the files just written, per target (lint reads Dockerfiles only)."""
    return [f"Check {target}: {CHECKS[target]}" for target in expand(targets) if target in CHECKS]


def compare(root: Path, files: dict[str, str]) -> list[Change]:
    changes: list[Change] = []
    for relative, content in files.items():
        path = root / relative
        if not path.exists():
            changes.append(Change(path, "create", content))
            continue
        current = path.read_text(encoding="utf-8", errors="replace")
        status: Literal["merge", "update"] = "update"
        if relative in MERGED:
            merge = merge_ignore if relative == ".dockerignore" else merge_env_example
            content, status = merge(current, content), "merge"
        if current == content:
            changes.append(Change(path, "unchanged", content))
            continue
        diff = list(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=f"{relative} (yours)",
                tofile=f"{relative} (fastlaunch)",
            )
        )
        changes.append(Change(path, status, content, diff))
    return changes


def refuse_overwrites(changes: list[Change]) -> None:
    conflicts = [c for c in changes if c.status == "update"]
    if conflicts:
        raise InitError(
            f"{len(conflicts)} file(s) exist and differ from what fastlaunch would write; nothing was written.",
            problems=[str(c.path) for c in conflicts],
            hint="Review the diff above, then run again with --force to overwrite (or move your files away).",
        )


def write(changes: list[Change]) -> None:
    for change in changes:
        if change.status != "unchanged":
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_text(change.content, encoding="utf-8")
