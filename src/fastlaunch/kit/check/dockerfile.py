"""The Dockerfile a deployment runs: the environment (``ENV``), ports (``EXPOSE``) and health check of its last
stage, and whether its command is the app's server."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fastlaunch.kit.check.deployment import At, Probe, duration, url_in, whole
from fastlaunch.kit.check.located import Loc

APP_COMMAND = re.compile(r"\b(fastlaunch|gunicorn|uvicorn)\b")


@dataclass
class Image:
    """What the Dockerfile gives every container built from it."""

    env: dict[str, At[str]] = field(default_factory=dict)
    exposed: list[At[int]] = field(default_factory=list)
    healthcheck: Probe | None = None
    runs_app: bool = True  # no Dockerfile: unknown, so a service that builds one is taken as the app
    loc: Loc | None = None
    command: str = ""  # CMD and ENTRYPOINT as written
    command_loc: Loc | None = None


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
            retries, start = whole(options.get("retries"), 3), duration(options.get("start-period", "0s")) or 0.0
            text = f"--start-period {start:g}s + --interval {interval:g}s x --retries {retries}"
            image.healthcheck = Probe("healthcheck", found[0], found[1], loc, start + interval * retries, text)
        elif keyword in ("CMD", "ENTRYPOINT"):
            image.runs_app = bool(APP_COMMAND.search(rest))
            image.command, image.command_loc = rest, loc
    return stages[-1] if stages else image


class Images:
    """The Dockerfiles of a project, each read once (compose services may build from several)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[Path, Image | None] = {}

    def at(self, path: Path) -> Image | None:
        path = path.resolve()
        if path not in self.cache:
            shown = (
                path.relative_to(self.root.resolve()).as_posix()
                if path.is_relative_to(self.root.resolve())
                else str(path)
            )
            self.cache[path] = read_dockerfile(path, shown) if path.is_file() else None
        return self.cache[path]
