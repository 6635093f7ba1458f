"""``fastlaunch lint``: the mistakes in Dockerfiles for Python web servers that generic linters cannot know
about, each with its line and the fix. The Dockerfile is read by BuildKit's own parser (the ``dockerfile``
package: heredocs, ``# escape=``, ``# syntax=``), the ``.dockerignore`` by Docker's own matching rules.

Generic rules (pinned apt versions, exec form in general, ...) are hadolint's; our codes start with FL so
the two tools' findings never share a name.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastlaunch.core.exceptions import TemplateError
from fastlaunch.kit.dockerignore import Matcher

INSTALL_HINT = "Install the parser it uses: pip install 'fastlaunch[lint]' (BuildKit's Dockerfile parser, 4 MB)."
DEPENDENCY_FILES = re.compile(
    r"^(\./)?([\w.-]+/)*(requirements[\w.-]*\.(txt|in)|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile(\.lock)?|setup\.cfg)$"
)
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")
DEPENDENCY_INSTALL = re.compile(
    r"\bpip3?\s+install\b|\bpoetry\s+install\b|\buv\s+sync\b|\buv\s+pip\s+install\b|\bpipenv\s+install\b"
)
# Installing the project itself ties every dependency to the code layer.
PROJECT_INSTALL = re.compile(r"\bpip3?\s+install\b[^&;|]*\s(-e\s+)?\.(\s|$)")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
GLOB = re.compile(r"[*?\[]")
# tiangolo/uvicorn-gunicorn(-fastapi), deprecated by its author; fastlaunch publishes the drop-in.
TIANGOLO = re.compile(
    r"^(?:(?:docker\.io|index\.docker\.io)/)?tiangolo/uvicorn-gunicorn(?:-fastapi)?(?::(?P<tag>.*))?$"
)
TIANGOLO_TAG = re.compile(r"^python3\.(?P<minor>\d+)(?P<slim>-slim)?")
DROP_IN = "fastlaunch/uvicorn-gunicorn-fastapi"
DROP_IN_MINORS = (11, 12, 13)  # the drop-in's tags: python3.X and python3.X-slim
WORKERS_FLAG = re.compile(r"^(?:--workers(?:=(?P<a>\S+))?|-w(?P<b>\S+)?)$")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case: FROM, RUN, ...
    flags: tuple[str, ...]  # --from=..., --mount=...
    value: tuple[str, ...]  # the arguments: exec-form items, ENV key/value pairs, or one shell string
    json: bool  # exec form (a JSON array)
    heredocs: tuple[str, ...] = ()

    @property
    def script(self) -> str:
        """What a RUN runs: its shell line and any heredoc bodies."""
        return "\n".join((" ".join(self.value), *self.heredocs))

    def argv(self) -> list[str]:
        """The words of a CMD/ENTRYPOINT, exec or shell form."""
        return list(self.value) if self.json else _split(" ".join(self.value))


@dataclass(frozen=True)
class Finding:
    line: int
    code: str
    message: str
    fix: str
    replacement: str | None = None  # the exact line to use instead, where there is one

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.code} {self.message}\n    fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse(text: str) -> list[Instruction]:
    """The instructions, read by BuildKit's own parser; a Dockerfile it rejects is a TemplateError."""
    try:
        import dockerfile
    except ImportError:
        raise TemplateError("fastlaunch lint needs the `dockerfile` package.", hint=INSTALL_HINT) from None
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise TemplateError(f"Docker cannot parse this Dockerfile: {exc}") from None
    return [
        Instruction(
            c.start_line, c.cmd.upper(), tuple(c.flags), tuple(c.value), c.json, tuple(h.content for h in c.heredocs)
        )
        for c in commands
    ]


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    values = list(ins.value)
    return [(k, " ".join(_split(v)) if v else "") for k, v in zip(values[::2], values[1::2], strict=False)]


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM" or not stages:
            stages.append([])
        stages[-1].append(ins)
    return stages


def lint(text: str, dockerignore: Matcher | None, context: Path | None = None) -> list[Finding]:
    """Findings sorted by line, then code. ``dockerignore`` is the build's ignore rules (None: no file)."""
    instructions = parse(text)
    stages = _stages(instructions)
    findings: list[Finding] = []
    stage_names: set[str] = set()
    for stage in stages:
        head = stage[0]
        if head.keyword == "FROM" and head.value:
            findings += _check_base(head, stage_names)
            if len(head.value) >= 3 and head.value[1].lower() == "as":
                stage_names.add(head.value[2].lower())
        findings += _check_stage(stage)
    final = stages[-1] if stages else []
    findings += _check_user(final)
    findings += _check_command(final)
    findings += _check_context(instructions, dockerignore, context)
    unique = {(f.line, f.code, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.line, f.code, f.message))


def _check_base(ins: Instruction, stage_names: set[str]) -> list[Finding]:
    image = ins.value[0]
    name = image.lower()
    if not name or name == "scratch" or name in stage_names or "$" in name:
        return []
    if match := TIANGOLO.match(name):
        return [_tiangolo(ins, image, match.group("tag") or "")]
    if "@sha256:" in name:
        return []
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if tag in ("", "latest"):
        return [
            Finding(
                ins.line,
                "FL005",
                f"base image {image} is {'untagged' if not tag else ':latest'}: builds change under you",
                "pin a version tag, e.g. FROM python:3.12-slim",
            )
        ]
    return []


def _tiangolo(ins: Instruction, image: str, tag: str) -> Finding:
    parsed = TIANGOLO_TAG.match(tag)
    # latest (and an untagged name) was python3.11; dated tags (python3.11-2024-...) keep their Python.
    minor = int(parsed.group("minor")) if parsed else 11
    slim = "-slim" if parsed and parsed.group("slim") else ""
    chosen = min(max(minor, DROP_IN_MINORS[0]), DROP_IN_MINORS[-1])
    rest = " ".join(ins.value[1:])
    replacement = " ".join(filter(None, ["FROM", *ins.flags, f"{DROP_IN}:python3.{chosen}{slim}", rest]))
    why = "" if chosen == minor else f"; Python 3.{minor} -> 3.{chosen}, the oldest the drop-in ships"
    return Finding(
        ins.line,
        "FL010",
        f"base image {image} is deprecated by its author and no longer gets Python or security updates",
        f"{replacement}  (fastlaunch's drop-in replacement for it{why})",
        replacement,
    )


def _check_stage(stage: list[Instruction]) -> list[Finding]:
    findings: list[Finding] = []
    code_copy: Instruction | None = None
    deps_installed = False  # a dependency install ran before any code was copied (uv/poetry's two-step install)
    pip_cache_off = False
    for ins in stage:
        if ins.keyword in ("COPY", "ADD"):
            sources = list(ins.value[:-1])
            if not any(f.startswith("--from") for f in ins.flags) and sources:
                if code_copy is None and not all(DEPENDENCY_FILES.match(s) for s in sources):
                    code_copy = ins
        elif ins.keyword == "ENV":
            for key, value in _env_pairs(ins):
                if key == "PIP_NO_CACHE_DIR" and value.lower() not in ("", "0", "false", "off", "no"):
                    pip_cache_off = True
                if key == "FORWARDED_ALLOW_IPS" and "*" in value.split(","):
                    findings.append(_forwarded(ins, f"ENV {key}=*"))
                elif value and (SECRET_NAME.search(key) or URL_CREDENTIALS.search(value)):
                    # The value is never printed: it is the secret.
                    findings.append(
                        Finding(
                            ins.line,
                            "FL008",
                            f"ENV {key} holds a secret: it is stored in the image for anyone who can pull it",
                            "pass it at run time (docker run -e / --env-file, a Kubernetes Secret); for build time "
                            "use a build secret (RUN --mount=type=secret)",
                        )
                    )
        elif ins.keyword == "RUN":
            findings += _check_run(ins, code_copy, deps_installed, pip_cache_off)
            if DEPENDENCY_INSTALL.search(ins.script):
                deps_installed |= code_copy is None
                code_copy = None  # one finding per copy
    return findings


def _check_run(ins: Instruction, code_copy: Instruction | None, deps_installed: bool, cache_off: bool) -> list[Finding]:
    findings: list[Finding] = []
    command = ins.script
    installs = DEPENDENCY_INSTALL.search(command)
    if installs and code_copy is not None and not deps_installed:
        findings.append(
            Finding(
                code_copy.line,
                "FL001",
                f"code is copied before the dependency install on line {ins.line}: every code change reinstalls "
                "all dependencies",
                "COPY only the dependency files (requirements.txt, pyproject.toml + lock), install, then COPY the code",
            )
        )
    project_install = PROJECT_INSTALL.search(command) or (
        re.search(r"\bpoetry\s+install\b", command) and not re.search(r"--no-root|--only[= ]root", command)
    )
    if project_install and not deps_installed:
        findings.append(
            Finding(
                ins.line,
                "FL002",
                "the dependency install also installs the project itself, so it cannot stay cached",
                "install the dependencies alone first (pip install -r requirements.txt, poetry install --no-root, "
                "uv sync --no-install-project), then copy the code and install the project",
            )
        )
    if re.search(r"\bapt-get\s+update\b", command) and not re.search(r"\bapt-get\s+(-\S+\s+)*install\b", command):
        findings.append(
            Finding(
                ins.line,
                "FL009",
                "apt-get update in its own RUN: its cached layer goes stale and later installs fail",
                "combine them: RUN apt-get update && apt-get install -y --no-install-recommends ... "
                "&& rm -rf /var/lib/apt/lists/*",
            )
        )
    cache_mount = any("type=cache" in f for f in ins.flags)
    if (
        PIP_INSTALL.search(command)
        and "--no-cache-dir" not in command
        and not cache_mount
        and not cache_off
        and not re.search(r"\buv\s+pip\s+install\b", command)
    ):
        findings.append(
            Finding(
                ins.line,
                "FL007",
                "pip install without --no-cache-dir keeps pip's download cache in the layer",
                "add --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a RUN --mount=type=cache for pip's cache)",
            )
        )
    return findings


def _check_user(final: list[Instruction]) -> list[Finding]:
    users = [i for i in final if i.keyword == "USER" and i.value]
    if users and users[-1].value[0].split(":")[0] not in ("root", "0"):
        return []
    line = users[-1].line if users else (final[0].line if final else 1)
    what = f"USER {users[-1].value[0]}" if users else "no USER"
    return [
        Finding(
            line,
            "FL004",
            f"the final stage runs as root ({what})",
            "create a user (RUN useradd --uid 10001 --user-group app) and add USER 10001:10001 before CMD",
        )
    ]


def _check_command(final: list[Instruction]) -> list[Finding]:
    findings: list[Finding] = []
    for ins in final:
        if ins.keyword not in ("CMD", "ENTRYPOINT"):
            continue
        argv = ins.argv()
        if not ins.json:
            findings.append(
                Finding(
                    ins.line,
                    "FL003",
                    f"{ins.keyword} in shell form runs under /bin/sh -c, which does not pass SIGTERM on: no graceful "
                    "shutdown",
                    f'use the exec form: {ins.keyword} ["fastlaunch", "run"]',
                    f'{ins.keyword} ["fastlaunch", "run"]',
                )
            )
        elif len(argv) >= 2 and Path(argv[0]).name in SHELLS and argv[1] == "-c":
            script = " ".join(argv[2:])
            # bash 5.1+ execs the last command of an && chain itself (dash, Debian's /bin/sh, does not).
            bash_execs = Path(argv[0]).name == "bash" and not re.search(r"[;|\n]|&(?!&)", script.replace("&&", ""))
            if not bash_execs and (not script or not re.search(r"(^|[;&|]\s*|\s)exec\s", script)):
                what = "its script comes from CMD" if not script else repr(_shorten(script))
                findings.append(
                    Finding(
                        ins.line,
                        "FL003",
                        f"{ins.keyword} runs the server as a child of {argv[0]} -c ({what}): the shell is PID 1 and "
                        "does not pass SIGTERM on: no graceful shutdown",
                        'CMD ["fastlaunch", "run"]: it runs the migrations and prestart script itself, then execs '
                        "the server (or end the script with `exec <server>`)",
                        'CMD ["fastlaunch", "run"]',
                    )
                )
        findings += _check_server_args(ins, argv)
    return findings


def _check_server_args(ins: Instruction, argv: list[str]) -> list[Finding]:
    words = [w for a in argv for w in (_split(a) if ins.json and " " in a else [a])]
    findings: list[Finding] = []
    dev_server = any(
        a in ("dev",) and i > 0 and Path(words[i - 1]).name in ("fastapi", "fastlaunch") for i, a in enumerate(words)
    )
    if "--reload" in words or dev_server:
        findings.append(
            Finding(
                ins.line,
                "FL011",
                f"{ins.keyword} starts a reloading development server: it watches files, runs one process and "
                "restarts on any change",
                'CMD ["fastlaunch", "run"] (keep --reload and `fastlaunch dev` for your laptop)',
                'CMD ["fastlaunch", "run"]',
            )
        )
    for i, word in enumerate(words):
        flag = WORKERS_FLAG.match(word)
        if not flag:
            continue
        count = flag.group("a") or flag.group("b") or (words[i + 1] if i + 1 < len(words) else "")
        if count.isdigit():
            findings.append(
                Finding(
                    ins.line,
                    "FL012",
                    f"{ins.keyword} hard-codes {count} workers: the same count on every machine, whatever the "
                    "container's CPU and memory limits",
                    "drop it: fastlaunch run sizes the workers from the container's limits (set WEB_CONCURRENCY at "
                    "run time to override)",
                )
            )
    for i, word in enumerate(words):
        if word.startswith("--forwarded-allow-ips"):
            value = word.partition("=")[2] or (words[i + 1] if i + 1 < len(words) else "")
            if "*" in value.strip("'\"").split(","):
                findings.append(_forwarded(ins, "--forwarded-allow-ips=*"))
    return findings


def _forwarded(ins: Instruction, what: str) -> Finding:
    return Finding(
        ins.line,
        "FL013",
        f"{what} trusts X-Forwarded-For from every client: anyone who reaches the port can forge their address "
        "(and scheme) in logs, rate limits and allow-lists",
        "set FORWARDED_ALLOW_IPS at run time to your proxy's address or network (e.g. 10.0.0.0/8); without a "
        "proxy, leave it unset",
    )


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _copied_sources(instructions: Iterable[Instruction]) -> list[tuple[Instruction, str]]:
    return [
        (ins, source)
        for ins in instructions
        if ins.keyword in ("COPY", "ADD") and not any(f.startswith("--from") for f in ins.flags)
        for source in ins.value[:-1]
        if not source.startswith("<<")
    ]


def _directory_like(source: str, context: Path | None) -> str | None:
    """The context directory a COPY source brings in whole, or None for a single named file."""
    source = source.strip().removeprefix("./") or "."
    if glob := GLOB.search(source):
        head = source[: glob.start()]
        return head.rsplit("/", 1)[0] if "/" in head else "."
    if source in (".", "/") or source.endswith("/"):
        return source.rstrip("/") or "."
    if context is not None and context.is_dir():
        return source if (context / source).is_dir() else None
    return source if "." not in Path(source).name else None


def _check_context(instructions: list[Instruction], ignore: Matcher | None, context: Path | None) -> list[Finding]:
    for ins, source in _copied_sources(instructions):
        directory = _directory_like(source, context)
        if directory is None:
            continue
        base = "" if directory in (".", "/") else directory.strip("/") + "/"
        leaks = [p for p in (f"{base}.env", f"{base}app/.env") if ignore is None or not ignore.ignored(p)]
        if not leaks:
            continue
        if ignore is None:
            what = "there is no .dockerignore"
        elif leaks[0] == f"{base}.env":
            what = f".dockerignore does not leave out {base}.env"
        else:
            what = f".dockerignore leaves out {base}.env but not those in subdirectories ({leaks[0]})"
        return [
            Finding(
                ins.line,
                "FL006",
                f"{what}: a local .env (secrets) can be copied into the image",
                "list **/.env and **/.env.* (with !**/.env.example) in the build context's .dockerignore, with .git, "
                ".venv and **/*.db (fastlaunch init docker writes one)",
            )
        ]
    return []


def ignore_file(dockerfile: Path, context: Path) -> Path | None:
    """The ignore file a build uses: BuildKit's per-Dockerfile one (Dockerfile.dockerignore beside it), else
    the context's .dockerignore."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def lint_file(dockerfile: Path, context: Path | None = None) -> list[Finding]:
    context = context if context is not None else dockerfile.parent
    found = ignore_file(dockerfile, context)
    try:
        matcher = Matcher.from_file(found) if found else None
    except ValueError as exc:  # what Docker itself refuses to build with
        raise TemplateError(f"{found}: {exc}.", hint="Fix that line: Docker refuses the build too.") from None
    return lint(dockerfile.read_text(encoding="utf-8"), matcher, context)
