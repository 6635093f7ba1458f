"""What one bench run measures: apps, configurations (server x app x access log) and their order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import SERVERS

APPS_DIR = Path(__file__).with_name("apps")
DOCS_ENDPOINTS = ("/", "/items/5?q=somequery", "/async")
# The raw ASGI ceiling runs on these servers (the fastest peer and fastlaunch's own stack, with and without its
# event-loop watchdog, whose cost is judged on every app).
CEILING_SERVERS = ("granian", "fastlaunch", "fastlaunch-nowatchdog")


@dataclass(frozen=True)
class AppSpec:
    name: str
    label: str
    app: str
    cwd: Path
    endpoints: tuple[str, ...]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    fastapi: bool = True
    seeded: bool = False  # the example: posts are seeded over HTTP before measuring


DOCS = AppSpec("docs", "FastAPI docs app", "docsapp:app", APPS_DIR, DOCS_ENDPOINTS, "/")
RAW = AppSpec("raw", "raw ASGI app", "rawasgi:app", APPS_DIR, ("/",), "/", fastapi=False)


@dataclass(frozen=True)
class Config:
    server: str
    app: AppSpec
    access_log: bool
    endpoints: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.server}/{self.app.name}/{'log' if self.access_log else 'nolog'}"

    @property
    def label(self) -> str:
        kind = SERVERS[self.server]
        log = (" (access log on)" if kind.access_log_off else " (access log always on)") if self.access_log else ""
        return f"{kind.label}{log}"


def configurations(servers: list[str], examples: list[AppSpec], *, access_log_runs: list[str]) -> list[Config]:
    """Docs app on every server (access log off where it can be), the access-log-on runs on `/`,
    the raw ceiling, then the example on each database."""
    configs = [Config(name, DOCS, not SERVERS[name].access_log_off, DOCS.endpoints) for name in servers]
    configs += [
        Config(name, DOCS, True, DOCS.endpoints[:1])
        for name in access_log_runs
        if name in servers and SERVERS[name].access_log_off
    ]
    configs += [Config(name, RAW, False, RAW.endpoints) for name in CEILING_SERVERS if name in servers]
    for spec in examples:
        configs += [Config(name, spec, not SERVERS[name].access_log_off, spec.endpoints) for name in servers]
    return configs


def rounds(configs: list[Config], repetitions: int) -> list[tuple[int, list[Config]]]:
    """Per repetition, one round per app with that app's configurations side by side; apps and servers in
    order A B C, then C B A in the next repetition, so every configuration sees early and late positions."""
    by_app: dict[str, list[Config]] = {}
    for config in configs:
        by_app.setdefault(config.app.name, []).append(config)
    groups = list(by_app.values())
    order: list[tuple[int, list[Config]]] = []
    for rep in range(repetitions):
        forward = rep % 2 == 0
        order += [(rep, group if forward else group[::-1]) for group in (groups if forward else groups[::-1])]
    return order
