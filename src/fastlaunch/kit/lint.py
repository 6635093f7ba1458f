"""``fastlaunch lint``: the Dockerfile mistakes that blog-post recipes spread, each with its line and fix."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DEPENDENCY_FILES = re.compile(
    r"^(\./)?(requirements[\w.-]*\.txt|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile(\.lock)?)$"
)
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")
DEPENDENCY_INSTALL = re.compile(r"\bpip3?\s+install\b|\bpoetry\s+install\b|\buv\s+sync\b|\bpipenv\s+install\b")
# Installing the project itself ties every dependency to the code layer.
PROJECT_INSTALL = re.compile(r"\bpip3?\s+install\b[^&;|]*\s(-e\s+)?\.(\s|$)")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass(frozen=True)
class Finding:
    line: int
    code: str
    message: str
    fix: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.code} {self.message}\n    fix: {self.fix}"


def parse(text: str) -> list[Instruction]:
    """Instructions with the line each starts on; continuation lines and comments folded away."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1].strip())
            continue
        buffer.append(line)
        joined = " ".join(part for part in buffer if part)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        buffer = []
    return instructions


def _flags_and_rest(args: str) -> tuple[list[str], list[str]]:
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    return [w for w in words if w.startswith("--")], [w for w in words if not w.startswith("--")]


def _env_pairs(args: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return [(words[0], " ".join(words[1:]))]
    return [(k, v) for k, _, v in (w.partition("=") for w in words)]


def _excludes_env(dockerignore: Path) -> bool:
    excluded = False
    for raw in dockerignore.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/")
        if any(fnmatch.fnmatch(candidate, pattern) for candidate in (".env", "**/.env")) or pattern in (
            "**/.env",
            "**/.env*",
        ):
            excluded = not negate
    return excluded


def lint(text: str, dockerignore: Path | None) -> list[Finding]:
    instructions = parse(text)
    findings: list[Finding] = []
    stages: list[list[Instruction]] = []
    stage_names: set[str] = set()
    for ins in instructions:
        if ins.keyword == "FROM":
            stages.append([])
            _, rest = _flags_and_rest(ins.args)
            image = rest[0] if rest else ""
            if len(rest) >= 3 and rest[1].lower() == "as":
                stage_names.add(rest[2].lower())
            findings += _check_base(ins, image, stage_names)
        if stages:
            stages[-1].append(ins)

    for stage in stages:
        findings += _check_stage(stage)

    final = stages[-1] if stages else []
    users = [i for i in final if i.keyword == "USER"]
    if not users or users[-1].args.split(":")[0] in ("root", "0"):
        line = users[-1].line if users else (final[0].line if final else 1)
        findings.append(
            Finding(
                line,
                "DL004",
                "the final stage runs as root (no USER)",
                "create a user (RUN useradd --uid 10001 --user-group app) and add USER 10001:10001 before CMD",
            )
        )

    copies = [i for i in instructions if i.keyword in ("COPY", "ADD") and "--from" not in i.args]
    if dockerignore is None or not dockerignore.is_file() or not _excludes_env(dockerignore):
        what = (
            "there is no .dockerignore"
            if dockerignore is None or not dockerignore.is_file()
            else (".dockerignore does not exclude .env")
        )
        findings.append(
            Finding(
                copies[0].line if copies else 1,
                "DL006",
                f"{what}: a local .env (secrets) can be copied into the image",
                "add a .dockerignore next to the Dockerfile listing .env, .git, .venv, *.db (fastlaunch init docker "
                "writes one)",
            )
        )
    return sorted(findings, key=lambda f: (f.line, f.code))


def _check_base(ins: Instruction, image: str, stage_names: set[str]) -> list[Finding]:
    name = image.lower()
    if not name or name == "scratch" or name in stage_names or "@sha256:" in name or "$" in name:
        return []
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if tag in ("", "latest"):
        return [
            Finding(
                ins.line,
                "DL005",
                f"base image {image} is {'untagged' if not tag else ':latest'}: builds change under you",
                "pin a version tag, e.g. FROM python:3.12-slim",
            )
        ]
    return []


def _check_stage(stage: list[Instruction]) -> list[Finding]:
    findings: list[Finding] = []
    code_copy: Instruction | None = None
    pip_cache_off = False
    for ins in stage:
        if ins.keyword in ("COPY", "ADD"):
            flags, rest = _flags_and_rest(ins.args)
            sources = rest[:-1]
            if not any(f.startswith("--from") for f in flags) and sources:
                if code_copy is None and not all(DEPENDENCY_FILES.match(s) for s in sources):
                    code_copy = ins
        elif ins.keyword == "ENV":
            for key, value in _env_pairs(ins.args):
                if key == "PIP_NO_CACHE_DIR" and value.lower() not in ("", "0", "false", "off", "no"):
                    pip_cache_off = True
                if value and (SECRET_NAME.search(key) or URL_CREDENTIALS.search(value)):
                    # The value is never printed: it is the secret.
                    findings.append(
                        Finding(
                            ins.line,
                            "DL008",
                            f"ENV {key} holds a secret: it is stored in the image for anyone who can pull it",
                            "pass it at run time (docker run -e / --env-file, a Kubernetes Secret); for build time "
                            "use a build secret (RUN --mount=type=secret)",
                        )
                    )
        elif ins.keyword == "RUN":
            command = ins.args
            if DEPENDENCY_INSTALL.search(command) and code_copy is not None:
                findings.append(
                    Finding(
                        code_copy.line,
                        "DL001",
                        f"code is copied before the dependency install on line {ins.line}: every code change "
                        "reinstalls all dependencies",
                        "COPY only the dependency files (requirements.txt, pyproject.toml + lock), install, then "
                        "COPY the code",
                    )
                )
                code_copy = None  # one finding per copy
            if PROJECT_INSTALL.search(command) or (
                re.search(r"\bpoetry\s+install\b", command) and "--no-root" not in command
            ):
                findings.append(
                    Finding(
                        ins.line,
                        "DL002",
                        "the dependency install also installs the project itself, so it cannot stay cached",
                        "install the dependencies alone (pip install -r requirements.txt, poetry install --no-root, "
                        "uv sync --no-install-project), then copy the code",
                    )
                )
            if re.search(r"\bapt-get\s+update\b", command) and not re.search(r"\bapt-get\s+install\b", command):
                findings.append(
                    Finding(
                        ins.line,
                        "DL002",
                        "apt-get update in its own RUN: its cached layer goes stale and later installs fail",
                        "combine them: RUN apt-get update && apt-get install -y --no-install-recommends ... "
                        "&& rm -rf /var/lib/apt/lists/*",
                    )
                )
            if (
                PIP_INSTALL.search(command)
                and "--no-cache-dir" not in command
                and "type=cache" not in command
                and not pip_cache_off
                and not re.search(r"\buv\s+pip\s+install\b", command)
            ):
                findings.append(
                    Finding(
                        ins.line,
                        "DL007",
                        "pip install without --no-cache-dir keeps pip's download cache in the layer",
                        "add --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a RUN --mount=type=cache for pip's cache)",
                    )
                )
        elif ins.keyword in ("CMD", "ENTRYPOINT") and not ins.args.startswith("["):
            findings.append(
                Finding(
                    ins.line,
                    "DL003",
                    f"{ins.keyword} in shell form runs under /bin/sh -c, which does not pass SIGTERM on: no graceful "
                    "shutdown",
                    f'use the exec form: {ins.keyword} ["fastlaunch", "run"]',
                )
            )
    return findings


def lint_file(dockerfile: Path) -> list[Finding]:
    return lint(dockerfile.read_text(encoding="utf-8"), dockerfile.parent / ".dockerignore")
