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
from fastlaunch.kit.check.deployment import At, Deployment, cpus, duration, memory
from fastlaunch.kit.check.dockerfile import Image, Images
from fastlaunch.kit.check.kubernetes import read_kubernetes
from fastlaunch.kit.check.located import Loc, Map, load_documents, merged
from fastlaunch.kit.project import SKIP_DIRS

MAX_FILES = 300  # a bound for huge trees: deployment files live near the top
OVERRIDE = re.compile(r"\.override(\.ya?ml)$")  # compose.override.yaml
OVERRIDE_OF = re.compile(r"(\.ya?ml)$")


@dataclass
class DeployFiles:
    deployments: list[Deployment] = field(default_factory=list)
    image: Image = field(default_factory=Image)
    read: list[str] = field(default_factory=list)  # files read, relative to the project
    skipped: list[str] = field(default_factory=list)  # "file: why"


def _systemd(path: Path, shown: str) -> Deployment | None:
    text = path.read_text(errors="replace")
    if not re.search(r"^ExecStart=.*\bfastlaunch\b", text, re.M):
        return None
    d = Deployment(f"{shown} (systemd unit)", "systemd", Loc(shown, 1))
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
    images = Images(root)
    if image := images.at(root / "Dockerfile"):
        result.image = image
        result.read.append("Dockerfile")
    manifests: list[Map] = []
    compose_files: dict[Path, Map] = {}
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
        composed = [d for d in documents if isinstance(d.get("services"), Map) and "apiVersion" not in d]
        if composed:
            compose_files[path] = composed[0]
        if kube or composed:
            result.read.append(shown)
    for path, document in compose_files.items():
        if OVERRIDE.search(path.name) and OVERRIDE.sub(r"\1", path.name) in {p.name for p in compose_files}:
            continue  # laid over its base file below, as `docker compose` does by default
        override = path.with_name(OVERRIDE_OF.sub(r".override\1", path.name))
        if override in compose_files:
            document = merged(document, compose_files[override])
        try:
            result.deployments += read_compose(document, path, variables, images)
        except (ValueError, TypeError, AttributeError) as exc:  # a shape no compose version accepts
            result.skipped.append(f"{path.relative_to(root)}: not a compose file fastlaunch can read ({exc})")
    try:
        result.deployments += read_kubernetes(manifests, image_runs_app=result.image.runs_app)
    except (ValueError, TypeError, AttributeError) as exc:  # a manifest of a shape the API server would refuse
        result.skipped.append(f"Kubernetes manifests: not readable ({exc})")
    for d in result.deployments:
        if d.platform == "kubernetes" and not d.command and result.image.command_loc:  # the image's CMD runs
            d.run_by(result.image.command, result.image.command_loc)
        if d.platform in ("compose", "swarm"):
            service = d.name.rsplit(" ", 1)[-1]
            d.upstreams += [port for host, port in caddy if host == service]
        if d.platform == "systemd":
            d.upstreams += nginx
    return result
