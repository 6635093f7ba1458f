"""Rules on how a stage is built: install order and caching (FL001, FL002, FL007, FL009), what ENV leaves in
the image (FL008, FL013) and ENV lines Docker reads otherwise than they look (FL016)."""

from __future__ import annotations

import re
import shlex

from fastlaunch.kit.lint.findings import Finding
from fastlaunch.kit.lint.grammar import Instruction, env_pairs, legacy_env, truthy

DEPENDENCY_FILES = re.compile(
    r"^(\./)?([\w.-]+/)*(requirements[\w.-]*\.(txt|in)|pyproject\.toml|poetry\.lock|uv\.lock|pdm\.lock|"
    r"Pipfile(\.lock)?|setup\.(cfg|py)|README[\w.]*|LICEN[CS]E[\w.]*|\.python-version)\*?$"
)
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")
# An install that reads the project's dependency files (a requirements file, the project, a lock): the one
# to run before the code is copied. `pip install poetry` (a tool, named inline) does not depend on the code.
DEPENDENCY_INSTALL = re.compile(
    r"\bpip3?\s+install\b[^&;|\n]*(\s(-r|--requirement)[\s=]?\S|\s(-e\s+)?\.(\[[^\]]*\])?(\s|$))"
    r"|\bpoetry\s+install\b|\buv\s+sync\b|\buv\s+pip\s+(install\b[^&;|\n]*\s(-r|--requirements?)\b|sync\b)"
    r"|\bpipenv\s+(install|sync)\b|\bpdm\s+(install|sync)\b|\bpip-sync\b"
)
# Installing the project itself ties every dependency to the code layer.
PROJECT_INSTALL = re.compile(r"\bpip3?\s+install\b[^&;|]*\s(-e\s+)?\.(\s|$)")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def check_stage(stage: list[Instruction], in_image: bool) -> list[Finding]:
    """``in_image``: the stage's layers are the final image's (it is the final stage or one it is built FROM);
    what ENV and pip leave behind matters only there."""
    findings: list[Finding] = []
    code_copy: Instruction | None = None
    deps_installed = False  # a dependency install ran before any code was copied (uv/poetry's two-step install)
    pip_cache_off = False
    for ins in stage:
        if ins.keyword in ("COPY", "ADD"):
            sources = list(ins.value[:-1])
            if ins.flag("from") is None and sources:
                if code_copy is None and not all(DEPENDENCY_FILES.match(s) for s in sources):
                    code_copy = ins
        elif ins.keyword == "ENV":
            findings += _check_legacy_env(ins)
            for key, value in env_pairs(ins):
                if key == "PIP_NO_CACHE_DIR" and truthy(value):
                    pip_cache_off = True
                if not in_image:
                    continue
                if key == "FORWARDED_ALLOW_IPS" and "*" in value.split(","):
                    findings.append(forwarded(ins, f"ENV {key}=*"))
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
            findings += _check_run(ins, code_copy, deps_installed, pip_cache_off or not in_image)
            if DEPENDENCY_INSTALL.search(ins.script):
                deps_installed |= code_copy is None
                code_copy = None  # one finding per copy
    return findings


def _check_run(ins: Instruction, code_copy: Instruction | None, deps_installed: bool, cache_ok: bool) -> list[Finding]:
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
        and not cache_ok
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


def _check_legacy_env(ins: Instruction) -> list[Finding]:
    """``ENV TZ = Asia/Shanghai`` sets TZ to ``= Asia/Shanghai``: the legacy form takes the rest of the line."""
    if not legacy_env(ins) or len(ins.value) != 2 or "=" not in ins.value[1]:
        return []
    key, value = ins.value
    if value.startswith("="):
        intended = value[1:].strip()
        quoted = intended if re.fullmatch(r"[^\s\"'$]*", intended) else shlex.quote(intended)
        replacement: str | None = f"ENV {key}={quoted}"
        fix = f"{replacement}  (no spaces around =)"
    else:
        replacement = None
        fix = f"write each variable as KEY=value: ENV {key}=... (ENV {key} {value} sets one variable)"
    return [
        Finding(
            ins.line,
            "FL016",
            f"`{ins.original}` is the legacy `ENV key value` form: {key} is set to {value!r}",
            fix,
            replacement,
        )
    ]


def forwarded(ins: Instruction, what: str) -> Finding:
    return Finding(
        ins.line,
        "FL013",
        f"{what} trusts X-Forwarded-For from every client: anyone who reaches the port can forge their address "
        "(and scheme) in logs, rate limits and allow-lists",
        "set FORWARDED_ALLOW_IPS at run time to your proxy's address or network (e.g. 10.0.0.0/8); without a "
        "proxy, leave it unset",
    )
