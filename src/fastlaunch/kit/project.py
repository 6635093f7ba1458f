"""What ``fastlaunch init`` needs to know about a project, found statically (nothing is imported):
dependency manager, the app, Alembic, the Python version, and the probe routes."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastlaunch.core.pyproject import read_pyproject
from fastlaunch.core.settings import Settings
from fastlaunch.launcher.discover import AppTarget, discover

Manager = Literal["uv", "poetry", "pep621", "requirements"]
# Where the dependency list comes from, per manager (the files the Dockerfile copies before the code).
MANAGER_FILES: dict[Manager, tuple[str, ...]] = {
    "uv": ("pyproject.toml", "uv.lock"),
    "poetry": ("pyproject.toml", "poetry.lock"),
    "pep621": ("pyproject.toml",),
    "requirements": ("requirements.txt",),
}
SKIP_DIRS = frozenset({".venv", "venv", ".git", "node_modules", "__pycache__", "tests", "build", "dist", ".tox"})
_VERSION = re.compile(r"(?:>=|~=|==|\^|~)?\s*(3)\.(\d+)")


@dataclass(frozen=True)
class Project:
    root: Path
    name: str  # a DNS-safe name for services, units and Kubernetes objects
    manager: Manager
    python: str  # "3.11": the python:3.X-slim tag
    python_source: str
    app: AppTarget
    alembic: bool
    healthz: bool
    readyz: bool
    declares_fastlaunch: bool

    @property
    def dependency_files(self) -> tuple[str, ...]:
        return MANAGER_FILES[self.manager]

    @property
    def app_file(self) -> str:
        return str(self.app.file.relative_to(self.root)) if self.app.file else self.app.module

    @property
    def app_env(self) -> str | None:
        """APP_MODULE to bake in when discovery would not find the app on its own in the image."""
        return None if self.app.source.startswith(("automatic", "pyproject")) else self.app.import_string

    def summary(self) -> list[tuple[str, str]]:
        return [
            ("project", f"{self.name} ({self.root})"),
            ("dependencies", f"{self.manager} ({', '.join(self.dependency_files)})"),
            ("app", f"{self.app.import_string} in {self.app_file} ({self.app.source})"),
            ("python", f"{self.python} ({self.python_source})"),
            ("alembic", "yes: the prestart step migrates" if self.alembic else "no"),
            ("/healthz", "found" if self.healthz else "not found: no HEALTHCHECK, liveness probes the TCP port"),
            ("/readyz", "found" if self.readyz else "not found: readiness probes /healthz or the TCP port"),
            ("fastlaunch", "in the dependencies" if self.declares_fastlaunch else "added to the image (pinned)"),
        ]


def detect_manager(root: Path, pyproject: dict[str, object]) -> Manager:
    if (root / "uv.lock").is_file():
        return "uv"
    if (root / "poetry.lock").is_file() or "poetry" in _table(pyproject, "tool"):
        return "poetry"
    if (root / "requirements.txt").is_file():
        return "requirements"
    if "project" in pyproject:
        return "pep621"
    return "requirements"


def _table(data: dict[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def detect_python(root: Path, pyproject: dict[str, object]) -> tuple[str, str]:
    pinned = root / ".python-version"
    if pinned.is_file() and (m := _VERSION.search(pinned.read_text())):
        return f"3.{m.group(2)}", ".python-version"
    requires = _table(pyproject, "project").get("requires-python")
    if isinstance(requires, str) and (m := _VERSION.search(requires)):
        return f"3.{m.group(2)}", f"requires-python {requires!r}"
    poetry_python = _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies").get("python")
    if isinstance(poetry_python, str) and (m := _VERSION.search(poetry_python)):
        return f"3.{m.group(2)}", f"tool.poetry python {poetry_python!r}"
    return f"3.{sys.version_info.minor}", "the running interpreter"


def _dependency_names(root: Path, pyproject: dict[str, object]) -> set[str]:
    specs: list[str] = []
    requirements = root / "requirements.txt"
    if requirements.is_file():
        specs += [line.strip() for line in requirements.read_text().splitlines() if line.strip()[:1].isalnum()]
    deps = _table(pyproject, "project").get("dependencies")
    if isinstance(deps, list):
        specs += [str(d) for d in deps]
    names = {re.split(r"[\s\[<>=!~;@]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}
    names |= {n.lower() for n in _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies")}
    return names


def python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("*.py")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            found.append(path)
    return found[:500]  # a bound for huge trees: the routes live near the app


def routes_declared(files: list[Path]) -> set[str]:
    """String constants that look like the probe paths, or fastlaunch.probes being used (it serves both)."""
    found: set[str] = set()
    for file in files:
        try:
            tree = ast.parse(file.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("/healthz", "/readyz"):
                found.add(node.value)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastlaunch.probes"):
                found |= {"/healthz", "/readyz"}
            elif isinstance(node, ast.ImportFrom) and node.module == "fastlaunch":
                if any(alias.name == "probes" for alias in node.names):
                    found |= {"/healthz", "/readyz"}
    return found


def _name(root: Path, pyproject: dict[str, object]) -> str:
    raw = _table(pyproject, "project").get("name") or _table(_table(pyproject, "tool"), "poetry").get("name")
    name = re.sub(r"[^a-z0-9-]+", "-", str(raw or root.resolve().name).lower()).strip("-")
    return (name or "app")[:40].strip("-")


def detect(settings: Settings, root: Path | None = None) -> Project:
    root = (root or settings.project_dir).resolve()
    pyproject: dict[str, object] = read_pyproject(root)
    python, python_source = detect_python(root, pyproject)
    routes = routes_declared(python_files(root))
    return Project(
        root=root,
        name=_name(root, pyproject),
        manager=detect_manager(root, pyproject),
        python=python,
        python_source=python_source,
        app=discover(settings, root),
        alembic=(root / "alembic.ini").is_file(),
        healthz="/healthz" in routes,
        readyz="/readyz" in routes,
        declares_fastlaunch="fastlaunch" in _dependency_names(root, pyproject),
    )
