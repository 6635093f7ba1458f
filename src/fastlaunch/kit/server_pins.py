"""Server pins a project holds that fastlaunch cannot run beside: Gunicorn, Uvicorn or uvicorn-worker required or
locked outside the releases fastlaunch supports, which pip, Poetry and uv would refuse to install together."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from fastlaunch.kit.requirements import requirement

SERVERS = ("gunicorn", "uvicorn", "uvicorn-worker")


def supported() -> dict[str, SpecifierSet]:
    """The releases fastlaunch's own metadata accepts, per server."""
    try:
        declared = requires("fastlaunch") or []
    except PackageNotFoundError:
        return {}
    ranges = {}
    for line in declared:
        requirement = Requirement(line)
        if requirement.name in SERVERS and requirement.marker is None:
            ranges[requirement.name] = requirement.specifier
    return ranges


def pin_warnings(root: Path) -> list[str]:
    """One line per server the project pins outside fastlaunch's range, naming the pin, its file and the range."""
    ranges = supported()
    found = []
    for name, spec, source in project_pins(root):
        ours = ranges.get(name)
        if ours is not None and outside(spec, ours):
            found.append(
                f"{source} pins {name}{spec}, outside the releases fastlaunch supports ({name}{ours}): an "
                "installer will refuse to add fastlaunch to it. Raise or widen the pin (docs: Install)."
            )
    return found


def outside(spec: SpecifierSet, ours: SpecifierSet) -> bool:
    """Whether no release the pin allows is one fastlaunch supports, judged from exact pins and upper bounds."""
    floor = min((Version(s.version) for s in ours if s.operator in (">=", "==")), default=None)
    for clause in spec:
        version = clause.version.removesuffix(".*")
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if clause.operator in ("==", "===") and not clause.version.endswith(".*"):
            return not ours.contains(parsed, prereleases=True)
        if floor is None:
            continue
        if clause.operator == "<" and parsed <= floor or clause.operator == "<=" and parsed < floor:
            return True
        if clause.operator in ("~=", "==") and _next_release(parsed, clause.operator) <= floor:
            return True
    return False


def _next_release(version: Version, operator: str) -> Version:
    """The first release past ``~=X.Y.Z`` (X.Y+1) or ``==X.Y.*`` (X.Y+1... of the given length)."""
    release = list(version.release)
    if operator == "~=" and len(release) > 1:
        release = release[:-1]
    release[-1] += 1
    return Version(".".join(map(str, release)))


def project_pins(root: Path) -> Iterator[tuple[str, SpecifierSet, str]]:
    """(server, specifier, file) for each server requirement or locked release in the project's files."""
    requirements = root / "requirements.txt"
    if requirements.is_file():
        for line in requirements.read_text(errors="replace").splitlines():
            yield from _requirement(line, "requirements.txt")
    pyproject = _toml(root / "pyproject.toml")
    for line in pyproject.get("project", {}).get("dependencies", []) or []:
        yield from _requirement(str(line), "pyproject.toml")
    poetry = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}
    for name, value in poetry.items():
        constraint = value.get("version") if isinstance(value, dict) else value
        if canonicalize_name(name) in SERVERS and isinstance(constraint, str):
            spec = _poetry_spec(constraint)
            if spec is not None:
                yield canonicalize_name(name), spec, "pyproject.toml"
    for lock in ("uv.lock", "poetry.lock"):
        for package in _toml(root / lock).get("package", []) or []:
            name = canonicalize_name(str(package.get("name", "")))
            if name in SERVERS and isinstance(package.get("version"), str):
                yield name, SpecifierSet(f"=={package['version']}"), lock


def _requirement(line: str, source: str) -> Iterator[tuple[str, SpecifierSet, str]]:
    found = requirement(line)
    if found and canonicalize_name(found.name) in SERVERS and found.specifier:
        yield canonicalize_name(found.name), found.specifier, source


def _poetry_spec(constraint: str) -> SpecifierSet | None:
    """Poetry's ``^X.Y``, ``~X.Y`` and bare versions as PEP 440 specifiers; others as they are."""
    constraint = constraint.strip()
    try:
        if match := re.fullmatch(r"([\^~])\s*(\d+(?:\.\d+)*)", constraint):
            low = Version(match[2])
            parts = list(low.release) + [0] * (3 - len(low.release))
            if match[1] == "^":  # the leftmost non-zero part may not change
                index = next((i for i, part in enumerate(parts) if part), len(parts) - 1)
            else:  # ~X.Y: the minor may not change (~X: the major)
                index = 0 if len(low.release) == 1 else 1
            high = [*parts[:index], parts[index] + 1]
            return SpecifierSet(f">={low},<{'.'.join(map(str, high))}")
        if re.fullmatch(r"\d+(\.\d+)*", constraint):
            return SpecifierSet(f"=={constraint}")
        return SpecifierSet(constraint) if constraint != "*" else None
    except (InvalidSpecifier, InvalidVersion):
        return None


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(errors="replace")) if path.is_file() else {}
    except tomllib.TOMLDecodeError:
        return {}
