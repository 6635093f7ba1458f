"""What ``fastlaunch check`` knows of one way the app is deployed, whatever file it was read from: how many
copies run at the peak, with which limits and environment, how the platform probes and stops them, and where
each value was written (``file:line``; no location when it is the platform's default)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar
from urllib.parse import urlsplit

from fastlaunch.kit.check.located import Loc

T = TypeVar("T")
Platform = Literal["compose", "swarm", "kubernetes", "systemd", "image", "local"]
MiB = 1024 * 1024


@dataclass(frozen=True)
class At(Generic[T]):
    """A value and where it was written; ``loc`` None means the platform's default, ``note`` says which."""

    value: T
    loc: Loc | None = None
    note: str = ""

    @property
    def where(self) -> str:
        return str(self.loc) if self.loc else (self.note or "default")


@dataclass(frozen=True)
class Probe:
    kind: str  # "startup", "readiness", "liveness", "healthcheck"
    path: str | None  # the HTTP path; None for a TCP or command probe
    port: int | str | None
    loc: Loc
    # The most time the probe allows from the container's start before it acts, in seconds.
    budget: float | None = None
    budget_text: str = ""


@dataclass
class Deployment:
    name: str  # "compose.yaml service app", "k8s/deployment.yaml Deployment posts-service"
    platform: Platform
    loc: Loc
    role: Literal["web", "migrate"] = "web"
    env: dict[str, At[str]] = field(default_factory=dict)
    replicas: At[int] = At(1, None, "one copy")
    surge: At[int] = At(0, None, "no extra copy during an update")
    cpu_limit: At[float] | None = None
    memory_limit: At[int] | None = None
    grace: At[float] | None = None  # seconds between SIGTERM and SIGKILL
    probes: list[Probe] = field(default_factory=list)
    ports: list[At[int]] = field(default_factory=list)  # ports the container declares (EXPOSE, containerPort)
    upstreams: list[At[int]] = field(default_factory=list)  # ports a proxy sends to (Caddy, nginx)
    proxies: list[At[str]] = field(default_factory=list)  # addresses of the proxies in front
    proxy_unknown: str = ""  # a proxy is in front but its address is not fixed: why
    max_connections: At[int] | None = None  # a PostgreSQL the same file runs, when it sets max_connections
    server: str = "fastlaunch"  # or "gunicorn" / "uvicorn" run directly: fastlaunch's drain and probes do not apply
    command: str = ""  # what the container runs, when the file (or its image) says

    def run_by(self, command: str, loc: Loc) -> None:
        """A command that runs Gunicorn or Uvicorn itself: its worker count and port, as those servers read
        them (``--workers``/``-w``, else ``WEB_CONCURRENCY``, else one; ``--port``/``--bind``/``-b``)."""
        self.command = command
        if re.search(r"\bfastlaunch\b", command) or not (found := re.search(r"\b(gunicorn|uvicorn)\b", command)):
            return
        self.server = found.group(1)
        if workers := re.search(r"(?:--workers|-w)[=\s]+(\d+)", command):
            self.env["WEB_CONCURRENCY"] = At(workers.group(1), loc)
        elif "WEB_CONCURRENCY" not in self.env:
            self.env["WEB_CONCURRENCY"] = At("1", loc, f"{self.server}'s default: one worker")
        if port := re.search(r"(?:--port[=\s]+|(?:--bind|-b)[=\s]+\S*:)(\d+)", command):
            self.env["PORT"] = At(port.group(1), loc)
            self.env.pop("BIND", None)

    @property
    def command_text(self) -> str:
        return self.command if len(self.command) <= 60 else self.command[:57] + "..."

    @property
    def peak(self) -> int:
        return self.replicas.value + self.surge.value


def whole(value: object, default: int) -> int:
    """A count as files write it (2, "2"); the default for what is not one (a template's "{{ .Values.n }}")."""
    text = str(value).strip()
    return int(text) if text.isdigit() else default


def cpus(text: object) -> float | None:
    """Kubernetes "500m" / "1" / 2, compose "0.5"."""
    raw = str(text).strip().strip('"')
    try:
        return int(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
    except ValueError:
        return None


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "ki": 1024, "mi": MiB, "gi": 1024**3}
_UNITS |= {"ti": 1024**4, "b": 1, "kb": 1024, "mb": MiB, "gb": 1024**3}


def memory(text: object, *, binary_letters: bool = False) -> int | None:
    """Kubernetes quantities ("512Mi", "1G", bytes); compose's ("512m", "1g", "512mb" are binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match:
        return None
    unit = match.group(2).lower()
    if binary_letters and unit in ("k", "m", "g", "t"):
        unit += "i"
    factor = _UNITS.get(unit)
    return None if factor is None else int(float(match.group(1)) * factor)


def duration(text: object) -> float | None:
    """Compose durations: "1m30s", "10s", "500ms", a bare number of seconds."""
    raw = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        return None
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * scale[u] for n, u in parts)


def surge_of(value: object, replicas: int) -> int:
    """Kubernetes maxSurge: a count or a percentage of the replicas, rounded up."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?%", text):
        return math.ceil(replicas * float(text[:-1]) / 100)
    return int(text) if text.isdigit() else 0


def url_in(command: object) -> tuple[str, int | None] | None:
    """The path and port of the first http(s) URL in a health-check command."""
    match = re.search(
        r"https?://[^\s'\"\]]+", " ".join(map(str, command)) if isinstance(command, list) else str(command)
    )
    if not match:
        return None
    url = match.group(0).replace(":%s", "")  # ':%s' % os.environ.get("PORT"): the port follows PORT
    try:
        parts = urlsplit(url)
        return parts.path or "/", parts.port
    except ValueError:
        return None
