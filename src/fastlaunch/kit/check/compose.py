"""Compose files (``docker compose`` and Swarm stacks, which share the format): the app's services, their
environment, ``deploy:`` replicas and limits, stop grace period, health check, the proxy in front and a
PostgreSQL started with ``-c max_connections=N``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from fastlaunch.kit.check.deployment import At, Deployment, Platform, Probe, cpus, duration, memory, url_in, whole
from fastlaunch.kit.check.dockerfile import APP_COMMAND as APP_COMMANDS
from fastlaunch.kit.check.dockerfile import Image, Images
from fastlaunch.kit.check.located import Loc, Map

PROXY_IMAGES = ("caddy", "nginx", "traefik", "haproxy", "envoy")
DATABASE_IMAGES = ("postgres", "postgis", "timescale")
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR:-default}`` substitution, from the environment and the project's .env."""

    def one(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        value = variables.get(name)
        op, arg = match.group("op") or "", match.group("arg") or ""
        if op.endswith("-") and not value:
            return arg
        if op.endswith("+"):
            return arg if value else ""
        return value or ""

    return _VARIABLE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def _env_files(service: Map, directory: Path, shown: str) -> dict[str, At[str]]:
    """``env_file:`` entries (a path, a list of paths or of ``{path, required}``), relative to the compose file."""
    raw = service.get("env_file")
    entries = raw if isinstance(raw, list) else [raw] if raw else []
    env: dict[str, At[str]] = {}
    for entry in entries:
        name = str(entry.get("path") if isinstance(entry, dict) else entry)
        path = directory / name
        if path.is_file():
            from dotenv import dotenv_values

            values = dotenv_values(path)
            env |= {k: At(v, None, f"{name} (env_file of {shown})") for k, v in values.items() if v is not None}
    return env


def _environment(service: Map, variables: Mapping[str, str]) -> dict[str, At[str]]:
    raw = service.get("environment")
    env: dict[str, At[str]] = {}
    if isinstance(raw, Map):
        for key, value in raw.items():
            env[str(key)] = At(interpolate("" if value is None else str(value), variables), raw.loc(key))
    elif isinstance(raw, list):  # ["KEY=value", ...]: the list has no per-item lines, the key's line stands
        for item in raw:
            key, equals, value = str(item).partition("=")
            if equals:
                env[key] = At(interpolate(value, variables), service.loc("environment"))
            elif key in variables:  # a bare name passes the variable from where compose runs
                env[key] = At(variables[key], service.loc("environment"))
    return env


def _command(service: Map) -> str:
    parts = [service.get("entrypoint"), service.get("command")]
    return " ".join(" ".join(map(str, p)) if isinstance(p, list) else str(p or "") for p in parts).strip()


def _dockerfile(service: Map, directory: Path) -> Path | None:
    """The Dockerfile a service builds: ``build: DIR`` or ``build: {context, dockerfile}``."""
    build = service.get("build")
    if isinstance(build, str):
        return directory / build / "Dockerfile"
    if isinstance(build, Map):
        return directory / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))
    return None


def _is_app(service: Map, image: Image | None) -> bool:
    """A service that runs the app: its command is fastlaunch's (or a server's), or it builds an image whose
    command is (with no command of its own)."""
    command = _command(service)
    if APP_COMMANDS.search(command):
        return True
    return image is not None and image.runs_app and not command.strip()


def _max_connections(service: Map) -> At[int] | None:
    match = re.search(r"max_connections=(\d+)", _command(service))
    return At(int(match.group(1)), service.loc("command")) if match else None


def _healthcheck(service: Map) -> list[Probe]:
    check = service.map("healthcheck")
    test = check.get("test")
    found = url_in(test) if test is not None and not check.get("disable") else None
    if not found:
        return []
    interval = duration(check.get("interval", "30s")) or 30.0
    retries = whole(check.get("retries"), 3)
    start = duration(check.get("start_period", "0s")) or 0.0
    return [
        Probe(
            "healthcheck",
            found[0],
            found[1],
            check.loc("test"),
            budget=start + interval * retries,
            budget_text=f"start_period {start:g}s + interval {interval:g}s x retries {retries}",
        )
    ]


def read_compose(document: Map, path: Path, variables: Mapping[str, str], images: Images) -> list[Deployment]:
    """One Deployment per app service (web, or migrate when it runs ``fastlaunch prestart``); its environment
    is its image's ``ENV`` under its ``env_file`` under its ``environment``."""
    services = document.map("services")
    # A stack file is compose-format; `docker stack deploy` is told which file, so its name is the only sign.
    platform: Platform = "swarm" if re.search(r"stack|swarm", path.as_posix()) else "compose"
    databases: dict[str, At[int]] = {}
    proxies: list[At[str]] = []
    proxy_unknown = ""
    for name, service in services.items():
        if not isinstance(service, Map):
            continue
        image = str(service.get("image", "")).split("/")[-1]
        if image.startswith(DATABASE_IMAGES) and (found := _max_connections(service)):
            databases[str(name)] = found
        if image.startswith(PROXY_IMAGES):
            networks = service.get("networks")
            addresses = [
                At(str(n.get(key)), n.loc(key))
                for n in (networks.values() if isinstance(networks, Map) else [])
                if isinstance(n, Map)
                for key in ("ipv4_address", "ipv6_address")
                if n.get(key)
            ]
            proxies += addresses
            if not addresses:
                proxy_unknown = f"service {name} ({image}) has no fixed address ({service.loc()})"
    deployments: list[Deployment] = []
    for name, service in services.items():
        if not isinstance(service, Map):
            continue
        dockerfile = _dockerfile(service, path.parent)
        built = images.at(dockerfile) if dockerfile else None
        if not _is_app(service, built):
            continue
        deploy = service.map("deploy")
        limits = deploy.map("resources").map("limits")
        d = Deployment(f"{services.loc(name)} service {name}", platform, services.loc(name))
        if re.search(r"(?<![-\w])prestart\b|\balembic\b", _command(service)):  # not run --no-prestart
            d.role = "migrate"
        image_env = built.env if built else {}
        d.env = image_env | _env_files(service, path.parent, services.file) | _environment(service, variables)
        if _command(service).strip():
            d.run_by(_command(service), service.loc("command" if "command" in service else "entrypoint"))
        elif built and built.command_loc:
            d.run_by(built.command, built.command_loc)
        if "replicas" in deploy:
            d.replicas = At(whole(deploy["replicas"], 1), deploy.loc("replicas"))
        elif "scale" in service:
            d.replicas = At(whole(service["scale"], 1), service.loc("scale"))
        update = deploy.map("update_config")
        if platform == "swarm" and update.get("order") == "start-first":
            d.surge = At(whole(update.get("parallelism"), 1), update.loc("order"), "start-first updates")
        if (cpu := limits.get("cpus", service.get("cpus"))) is not None and (value := cpus(cpu)) is not None:
            d.cpu_limit = At(value, limits.loc("cpus") if "cpus" in limits else service.loc("cpus"))
        mem = limits.get("memory", service.get("mem_limit"))
        if mem is not None and (size := memory(mem, binary_letters=True)) is not None:
            d.memory_limit = At(size, limits.loc("memory") if "memory" in limits else service.loc("mem_limit"))
        grace = duration(service["stop_grace_period"]) if "stop_grace_period" in service else None
        d.grace = (
            At(grace, service.loc("stop_grace_period"))
            if grace is not None
            else At(10.0, None, "compose's default 10s")
        )
        d.probes = _healthcheck(service)
        for port in service.list("ports") + service.list("expose"):
            target = str(port.get("target")) if isinstance(port, dict) else str(port).split("/")[0].rsplit(":", 1)[-1]
            if str(target).isdigit():
                d.ports.append(At(int(target), service.loc("ports" if "ports" in service else "expose")))
        d.proxies, d.proxy_unknown = proxies, proxy_unknown
        url = d.env.get("DATABASE_URL")
        host = re.search(r"@([\w.-]+)", url.value) if url else None
        if host and host.group(1) in databases:
            d.max_connections = databases[host.group(1)]
        deployments.append(d)
    return deployments


def read_caddyfile(path: Path, shown: str) -> list[tuple[str, At[int]]]:
    """``reverse_proxy app:8000`` lines: the service name and the port the proxy sends to."""
    found: list[tuple[str, At[int]]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for host, port in re.findall(r"reverse_proxy\s+(?:https?://)?([\w.-]+):(\d+)", line):
            found.append((host, At(int(port), Loc(shown, number))))
    return found
