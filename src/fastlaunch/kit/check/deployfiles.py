"""Finds the deployment files of a project and reads each into ``Deployment``s: compose and Swarm stack files,
Kubernetes manifests, systemd units (with the nginx in front), and the Dockerfile the others build on."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fastlaunch.kit.check.compose import read_caddyfile, read_compose
from fastlaunch.kit.check.deployment import At, Deployment, Probe, cpus, duration, memory, url_in
from fastlaunch.kit.check.kubernetes import read_kubernetes
from fastlaunch.kit.check.located import Loc, Map, load_documents
from fastlaunch.kit.project import SKIP_DIRS

MAX_FILES = 300  # a bound for huge trees: deployment files live near the top
APP_COMMAND = re.compile(r"\b(fastlaunch|gunicorn|uvicorn)\b")


@dataclass
class Image:
    """What the Dockerfile gives every container built from it."""

    env: dict[str, At[str]] = field(default_factory=dict)
    exposed: list[At[int]] = field(default_factory=list)
    healthcheck: Probe | None = None
    runs_app: bool = True  # no Dockerfile: unknown, so a service that builds one is taken as the app
    loc: Loc | None = None


@dataclass
class DeployFiles:
    deployments: list[Deployment] = field(default_factory=list)
    image: Image = field(default_factory=Image)
    read: list[str] = field(default_factory=list)  # files read, relative to the project
    skipped: list[str] = field(default_factory=list)  # "file: why"


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """Dockerfile instructions as (line, KEYWORD, arguments), continuation lines joined."""
    found: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        start = start or number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        found.append((start, keyword.upper(), rest.strip()))
        pending, start = "", 0
    return found


def read_dockerfile(path: Path, shown: str) -> Image:
    image = Image(loc=Loc(shown, 1))
    stages: list[Image] = []
    for line, keyword, rest in _instructions(path.read_text(errors="replace")):
        loc = Loc(shown, line)
        if keyword == "FROM":  # only the last stage is the image that runs
            stages.append(image := Image(loc=loc))
        elif keyword == "ENV":
            pairs = shlex.split(rest) if "=" in rest.split(" ")[0] else [rest.replace(" ", "=", 1)]
            image.env |= {k: At(v, loc) for k, _, v in (p.partition("=") for p in pairs)}
        elif keyword == "EXPOSE":
            image.exposed += [At(int(p.split("/")[0]), loc) for p in rest.split() if p.split("/")[0].isdigit()]
        elif keyword == "HEALTHCHECK" and (found := url_in(rest)):
            options = dict(re.findall(r"--([\w-]+)=(\S+)", rest))
            interval = duration(options.get("interval", "30s")) or 30.0
            retries, start = int(options.get("retries", 3)), duration(options.get("start-period", "0s")) or 0.0
            text = f"--start-period {start:g}s + --interval {interval:g}s x --retries {retries}"
            image.healthcheck = Probe("healthcheck", found[0], found[1], loc, start + interval * retries, text)
        elif keyword in ("CMD", "ENTRYPOINT"):
            image.runs_app = bool(APP_COMMAND.search(rest))
    return stages[-1] if stages else image


def _systemd(path: Path, shown: str) -> Deployment | None:
    text = path.read_text(errors="replace")
    if not re.search(r"^ExecStart=.*\bfastlaunch\b", text, re.M):
        return None
    d = Deployment(f"{shown} (systemd)", "systemd", Loc(shown, 1))
    d.grace = At(90.0, None, "systemd's default TimeoutStopSec 90s")
    for number, line in enumerate(text.splitlines(), 1):
        key, _, value = line.strip().partition("=")
        loc = Loc(shown, number)
        if key == "Environment":
            d.env |= {k: At(v, loc) for k, _, v in (p.partition("=") for p in shlex.split(value))}
        elif key == "TimeoutStopSec" and (seconds := duration(value)) is not None:
            d.grace = At(seconds, loc)
        elif key == "MemoryMax" and (size := memory(value, binary_letters=True)) is not None:
            d.memory_limit = At(size, loc)
        elif key == "CPUQuota" and value.endswith("%") and (quota := cpus(value[:-1])) is not None:
            d.cpu_limit = At(quota / 100, loc)
    d.proxies = [At("127.0.0.1", None, "a proxy on the same server")]
    return d


def _nginx_ports(path: Path, shown: str) -> list[At[int]]:
    found: list[At[int]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for port in re.findall(r"^\s*(?:server|proxy_pass\s+https?://)\s*(?:127\.0\.0\.1|localhost):(\d+)", line):
            found.append(At(int(port), Loc(shown, number)))
    return found


def candidates(root: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if len(parts) > 5 or SKIP_DIRS.intersection(parts[:-1]) or any(p.startswith(".") for p in parts[:-1]):
            continue
        if path.suffix in (".yaml", ".yml", ".service", ".conf") or path.name == "Caddyfile":
            found.append(path)
        if len(found) >= MAX_FILES:
            break
    return found


def read_deploy_files(root: Path, variables: Mapping[str, str]) -> DeployFiles:
    """Every deployment file under ``root``; ``variables`` fill compose's ``${VAR}`` (the environment, .env)."""
    result = DeployFiles()
    if (root / "Dockerfile").is_file():
        result.image = read_dockerfile(root / "Dockerfile", "Dockerfile")
        result.read.append("Dockerfile")
    manifests: list[Map] = []
    caddy: list[tuple[str, At[int]]] = []
    nginx: list[At[int]] = []
    for path in candidates(root):
        shown = path.relative_to(root).as_posix()
        if path.suffix == ".service":
            if d := _systemd(path, shown):
                result.deployments.append(d)
                result.read.append(shown)
            continue
        if path.suffix == ".conf":
            if ports := _nginx_ports(path, shown):
                nginx += ports
                result.read.append(shown)
            continue
        if path.name == "Caddyfile":
            caddy += read_caddyfile(path, shown)
            result.read.append(shown)
            continue
        try:
            documents = load_documents(path, shown)
        except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError) as exc:
            if "{{" in path.read_text(errors="replace"):
                result.skipped.append(f"{shown}: a template (Helm?), not plain YAML: check what it renders to")
            else:
                result.skipped.append(f"{shown}: not valid YAML ({str(exc).splitlines()[0]})")
            continue
        kube = [d for d in documents if "apiVersion" in d and "kind" in d]
        manifests += kube
        for document in documents:
            if isinstance(document.get("services"), Map) and "apiVersion" not in document:
                result.deployments += read_compose(document, path, variables, image_runs_app=result.image.runs_app)
        if kube or any("services" in d for d in documents):
            result.read.append(shown)
    result.deployments += read_kubernetes(manifests)
    for d in result.deployments:
        if d.platform in ("compose", "swarm"):
            service = d.name.rsplit(" ", 1)[-1]
            d.ports += [port for host, port in caddy if host == service]
        if d.platform == "systemd":
            d.ports += nginx
    return result
