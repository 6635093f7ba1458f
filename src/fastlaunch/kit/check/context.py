"""One deployment resolved: the environment its containers get (the Dockerfile's ``ENV`` under the file's own),
fastlaunch's settings under that environment, and the worker plan ``fastlaunch run`` would make inside its
limits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.secret_files import file_variable
from fastlaunch.core.settings import BY_NAME, SETTINGS, Settings, load_settings
from fastlaunch.kit.check.deployment import At, Deployment
from fastlaunch.kit.check.located import Loc
from fastlaunch.launcher.workers import MiB, PlanRequest, Sourced, WorkerPlan, compute_workers

MASTER_MEMORY = 40 * MiB  # a fastlaunch master before it preloads anything (measured: 35-40 MiB)


@dataclass(frozen=True)
class Host:
    cpus: int  # CPUs of a host when a file sets no CPU limit
    cpus_source: str
    worker_rss: int | None = None  # measured with --import
    import_seconds: float | None = None
    note: str = ""  # what --import could not do


@dataclass
class Context:
    deployment: Deployment
    env: dict[str, At[str]]
    settings: Settings
    plan: WorkerPlan
    host_cpus: str = ""  # set when the worker count follows the host's CPUs (no limit, no WEB_CONCURRENCY)
    problems: list[str] = field(default_factory=list)

    def setting(self, name: str) -> str:
        """``GRACEFUL_TIMEOUT 120 (default)`` / ``GRACEFUL_TIMEOUT 30 (k8s/configmap.yaml:12)``."""
        env = BY_NAME[name].env or name
        value = getattr(self.settings, name)
        shown = "on" if value is True else "off" if value is False else value
        return f"{env} {shown} ({self.where(name)})"

    def where(self, name: str) -> str:
        env = BY_NAME[name].env
        if env and env in self.env:
            return self.env[env].where
        source = self.settings.source(name)
        return source.where if source.kind == "pyproject" else "default"

    def loc(self, name: str) -> Loc | None:
        env = BY_NAME[name].env
        return self.env[env].loc if env and env in self.env else None

    @property
    def workers(self) -> int:
        return self.plan.workers


def _where_of(env: dict[str, At[str]], settings: Settings, name: str) -> str:
    key = BY_NAME[name].env
    return env[key].where if key and key in env else settings.source(name).describe()


def resolve(
    deployment: Deployment, image_env: dict[str, At[str]], table: dict[str, object], root: Path, host: Host
) -> Context:
    # A compose service's image is known (its build:) and already under its env; a pod's image is taken as the
    # project's Dockerfile.
    inherits = deployment.platform == "kubernetes"
    env = {**(image_env if inherits else {}), **deployment.env}
    problems: list[str] = []
    # A secret's *_FILE names a file inside the container (a mounted secret), not one to read here.
    in_container = {file_variable(s.env) for s in SETTINGS if s.secret and s.env}
    environ = {k: v.value for k, v in env.items() if k not in in_container}
    try:
        settings = load_settings(environ=environ, pyproject=table, project_dir=root)
    except ConfigError as exc:
        problems = exc.problems or [exc.message]
        settings = load_settings(pyproject=table, project_dir=root)
    limit = deployment.cpu_limit
    affinity = max(host.cpus, math.ceil(limit.value)) if limit else host.cpus
    worker_memory = settings.worker_memory or host.worker_rss
    master = MASTER_MEMORY + (host.worker_rss or 0) if settings.preload and host.worker_rss else MASTER_MEMORY

    def sourced(name: str) -> Sourced[int] | None:
        value = getattr(settings, name)
        return None if value is None else Sourced(value, f"{BY_NAME[name].env} ({_where_of(env, settings, name)})")

    # Gunicorn or Uvicorn run directly start the workers they are told, whatever the memory limit.
    capped = deployment.memory_limit if deployment.server == "fastlaunch" else None
    request = PlanRequest(
        affinity_cpus=affinity,
        cpu_quota=Sourced(limit.value, f"CPU limit ({limit.where})") if limit else None,
        memory_limit=Sourced(capped.value, f"memory limit ({capped.where})") if capped else None,
        workers_per_core=Sourced(settings.workers_per_core, "WORKERS_PER_CORE"),
        max_workers=sourced("max_workers"),
        web_concurrency=sourced("workers"),
        worker_memory=Sourced(worker_memory, "WORKER_MEMORY" if settings.worker_memory else "measured (--import)")
        if worker_memory
        else None,
        master_memory=master,
    )
    context = Context(deployment, env, settings, compute_workers(request), problems=problems)
    if not limit and settings.workers is None:
        context.host_cpus = (
            f"no CPU limit: the workers follow the host's CPUs, taken as {host.cpus} ({host.cpus_source})"
        )
    return context
