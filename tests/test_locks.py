"""The lock files (``make lock``): they cover what pyproject.toml and example/pyproject.toml ask for, every pin is
hashed, the example's lock agrees with the test environment's, and this environment holds exactly the lock."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from support import ROOT

DEV = ROOT / "locks" / "dev.txt"
EXAMPLE = ROOT / "example" / "requirements.txt"
COMPAT = ROOT / "locks" / "compat.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    """name -> pinned version, for the entries whose markers hold here; every entry must carry a hash."""
    found: dict[str, str] = {}
    for entry in re.split(r"\n(?=\S)", lock.read_text()):
        if entry.startswith("#") or not entry.strip():
            continue
        head = entry.split("\\")[0].strip()
        assert "--hash=sha256:" in entry, f"{lock.name}: {head} has no hash"
        requirement = Requirement(head)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{lock.name}: {head} is not pinned"
        if requirement.marker is None or requirement.marker.evaluate():
            found[canonical(requirement.name)] = spec.version
    return found


def declared(pyproject: Path, extras: tuple[str, ...] = ()) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project["dependencies"]) + [
        line for extra in extras for line in project["optional-dependencies"][extra]
    ]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("lock", "sources"),
    [
        (DEV, [(ROOT / "pyproject.toml", ("dev", "bench")), (ROOT / "example" / "pyproject.toml", ())]),
        (EXAMPLE, [(ROOT / "pyproject.toml", ()), (ROOT / "example" / "pyproject.toml", ())]),
        (COMPAT, [(ROOT / "pyproject.toml", ())]),
    ],
    ids=["dev", "example", "compat"],
)
def test_each_lock_satisfies_what_its_projects_declare(lock: Path, sources: list[tuple[Path, tuple[str, ...]]]) -> None:
    locked = pins(lock)
    for pyproject, extras in sources:
        for requirement in declared(pyproject, extras):
            name = canonical(requirement.name)
            if name == "fastlaunch" or (requirement.marker and not requirement.marker.evaluate()):
                continue
            assert name in locked, f"{name} ({pyproject.relative_to(ROOT)}) is not in {lock.name}: run make lock"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"{lock.name} pins {name}=={locked[name]}, outside {requirement} ({pyproject.relative_to(ROOT)}): "
                "run make lock"
            )
    assert "fastlaunch" not in locked  # this checkout, installed on its own


def test_the_example_lock_is_the_test_environments_versions() -> None:
    dev, example = pins(DEV), pins(EXAMPLE)
    assert {name: dev.get(name) for name in example} == example


def test_this_environment_holds_exactly_the_lock() -> None:
    """What `make test` installed (scripts/bootstrap) is the lock, so every machine tests the same releases."""
    differ = {}
    for name, pinned in pins(DEV).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            differ[name] = (pinned, installed)
    assert not differ, f"(locked, installed) differ: {differ}; run make test (it reinstalls the lock)"
