"""FL006: a COPY that can bring a directory of the build context in, while the .dockerignore lets a .env
(secrets) into that context."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from fastlaunch.kit.dockerignore import Matcher
from fastlaunch.kit.lint.findings import Finding
from fastlaunch.kit.lint.grammar import Instruction

GLOB_CHARS = "*?["


def _copied_sources(instructions: Iterable[Instruction]) -> list[tuple[Instruction, str]]:
    return [
        (ins, source)
        for ins in instructions
        if ins.keyword in ("COPY", "ADD") and ins.flag("from") is None
        for source in ins.value[:-1]
        if not source.startswith("<<") and "://" not in source
    ]


def _directory_like(source: str, context: Path | None) -> str | None:
    """The context directory whose .env a COPY source can bring in, or None when it names files only."""
    source = source.strip().removeprefix("./") or "."
    if any(c in source for c in GLOB_CHARS):
        head, _, last = source.rpartition("/")
        if any(c in head for c in GLOB_CHARS):
            return (head.split("*")[0].rsplit("/", 1)[0] if "/" in head else "") or "."
        directory = head or "."
        if fnmatch.fnmatchcase(".env", last):
            return directory  # `*` matches dot files in Docker's globbing
        if context is not None and context.is_dir():
            base = context / directory
            return directory if base.is_dir() and any(p.is_dir() for p in base.glob(last)) else None
        # A pattern with a literal extension or file name (`*.py`, `poetry.lock*`) names files.
        literal = last.replace("*", "").replace("?", "")
        return None if "." in literal else directory
    if source in (".", "/") or source.endswith("/"):
        return source.rstrip("/") or "."
    if context is not None and context.is_dir():
        return source if (context / source).is_dir() else None
    return source if "." not in Path(source).name else None


def check_context(instructions: list[Instruction], ignore: Matcher | None, context: Path | None) -> list[Finding]:
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
