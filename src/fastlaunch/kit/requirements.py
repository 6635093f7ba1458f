"""What a project's requirements files ask pip for, read without pip: the other files they pull in
(``-r``/``-c``, which the image must copy too) and a line installing the project itself (``-e .``,
``.[extras]``), which the image turns into the project's own dependencies (its code comes later)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = "requirements.txt"
INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)")
# The project itself: ".", "./", "-e .", "--editable .[a,b]", "-e file:.". SELF_GREP is the same for grep -E,
# which the image's build runs to drop those lines.
SELF = re.compile(r"^\s*(?:(?:-e|--editable)(?:\s+|=))?(?:file:)?\.\/?(?:\[(?P<extras>[^\]]*)\])?\s*(?:#.*)?$")
SELF_GREP = r"^\s*((-e|--editable)(\s+|=))?(file:)?\./?(\[[^]]*\])?\s*(#.*)?$"
# What pip allows after a requirement on its line: a comment, options (--hash=...), a line continuation.
PIP_TAIL = re.compile(r"\s+(?:#|--?[A-Za-z]).*$|\s*\\$")


@dataclass(frozen=True)
class Requirements:
    files: tuple[str, ...]  # requirements.txt and every file it includes, relative to the root
    installs_self: bool = False
    extras: tuple[str, ...] = ()


def read_requirements(root: Path) -> Requirements:
    files: list[str] = []
    installs_self = False
    extras: list[str] = []
    pending = [REQUIREMENTS]
    while pending and len(files) < 20:
        relative = pending.pop(0)
        path = (root / relative).resolve()
        if relative in files or not path.is_file() or not path.is_relative_to(root.resolve()):
            continue
        files.append(relative)
        for line in path.read_text(errors="replace").splitlines():
            if included := INCLUDE.match(line):
                pending.append((Path(relative).parent / included.group(1)).as_posix())
            elif match := SELF.match(line):
                installs_self = True
                extras += [e.strip() for e in (match.group("extras") or "").split(",") if e.strip()]
    return Requirements(tuple(files), installs_self, tuple(dict.fromkeys(extras)))


def requirement(line: str) -> Requirement | None:
    """A requirements-file line or a PEP 508 string as a Requirement; None for a blank line, a comment, an option
    (``-r``, ``-e``, ``--index-url``), a path, or text that is not a requirement."""
    text = PIP_TAIL.sub("", line.strip())
    if not text[:1].isalnum():
        return None
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def requirement_names(lines: Iterable[str]) -> set[str]:
    """The canonical (PEP 503) names of the projects the lines ask for."""
    return {canonicalize_name(found.name) for line in lines if (found := requirement(line))}


def requirement_lines(root: Path, requirements: Requirements) -> list[str]:
    """Every line of the requirements files that exist."""
    paths = [root / name for name in requirements.files]
    return [line for path in paths if path.is_file() for line in path.read_text(errors="replace").splitlines()]
