"""``fastlaunch check``: reads the project (statically), its settings and its deployment files, and runs every
check on every deployment found. Nothing of the app is imported here; ``--import`` measures it in a child."""

from __future__ import annotations

import os
from pathlib import Path

from fastlaunch.core.pyproject import read_tool_table
from fastlaunch.core.settings import SETTINGS, Settings
from fastlaunch.kit.check.connections import check_connections
from fastlaunch.kit.check.consistency import check_consistency
from fastlaunch.kit.check.context import Context, Host, resolve
from fastlaunch.kit.check.deployfiles import read_deploy_files
from fastlaunch.kit.check.deployment import At, Deployment
from fastlaunch.kit.check.dockerfile import Image
from fastlaunch.kit.check.located import Loc
from fastlaunch.kit.check.memory import check_memory
from fastlaunch.kit.check.pools import Pool, read_pools
from fastlaunch.kit.check.report import Finding, Report, Section
from fastlaunch.kit.check.routes import read_routes
from fastlaunch.kit.check.server import ServerLimit, live_limit
from fastlaunch.kit.project import python_files


def _dotenv(root: Path) -> dict[str, str]:
    if not (root / ".env").is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}


def _image_deployment(image: Image) -> Deployment:
    d = Deployment("Dockerfile (the image on its own)", "image", image.loc or Loc("Dockerfile", 1))
    d.ports = list(image.exposed)
    d.probes = [image.healthcheck] if image.healthcheck else []
    if image.command_loc:
        d.run_by(image.command, image.command_loc)
    return d


def _local(settings: Settings) -> Deployment:
    d = Deployment("this machine (no deployment file found)", "local", Loc(".", 0))
    envs = {s.env for s in SETTINGS if s.env}
    d.env = {k: At(v, None, "environment") for k, v in os.environ.items() if k in envs}
    return d


def _group(d: Deployment) -> str:
    """Deployments that run together and share one database."""
    if d.platform == "kubernetes":  # the manifests of one directory are applied together (kubectl apply -k)
        return f"Kubernetes manifests in {Path(d.loc.file).parent.as_posix()}/"
    if d.platform in ("compose", "swarm"):
        return d.loc.file
    return d.name


def check_project(root: Path, settings: Settings, host: Host) -> Report:
    table, _ = read_tool_table(root)
    variables = {**_dotenv(root), **os.environ}
    files = read_deploy_files(root, variables)
    report = Report(str(root), read=files.read, notes=[*files.skipped, *([host.note] if host.note else [])])
    deployments = list(files.deployments)
    if files.image.loc is not None:
        deployments.insert(0, _image_deployment(files.image))
    if not files.deployments:
        deployments.append(_local(settings))
    sources = python_files(root)
    routes = read_routes(sources)
    contexts = [resolve(d, files.image.env, table, root, host) for d in deployments]
    pools_cache: dict[tuple[tuple[str, str], ...], list[Pool]] = {}

    def pools_for(context: Context) -> list[Pool]:
        key = tuple(sorted((k, v.value) for k, v in context.env.items()))
        if key not in pools_cache:
            pools_cache[key] = read_pools(root, sources, {k: v.value for k, v in context.env.items()})
        return pools_cache[key]

    server: ServerLimit | None = None
    groups: dict[str, list[Context]] = {}
    for context in contexts:
        d = context.deployment
        if context.problems:
            report.findings.append(
                Finding(
                    "FC001",
                    "error",
                    "invalid fastlaunch settings",
                    d.name,
                    context.problems,
                    [d.name],
                    "Fix the values in the file's environment.",
                )
            )
        report.findings += check_consistency(context, routes, host)
        if d.platform == "image":
            continue
        if d.role == "web":
            lines, found = check_memory(context, host)
            report.findings += found
            report.sections.append(Section(d.name, lines))
        groups.setdefault(_group(d), []).append(context)
    for name, group in groups.items():
        if not any(pools_for(c) for c in group if c.deployment.role == "web"):
            continue
        if server is None:
            server = live_limit(settings.database_url)
        lines, found = check_connections(group, pools_for, server, alembic=(root / "alembic.ini").is_file())
        if lines:
            report.sections.append(Section(f"Database connections: {name}", lines))
        report.findings += found
    return report
