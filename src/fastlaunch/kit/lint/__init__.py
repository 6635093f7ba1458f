"""``fastlaunch lint``: the mistakes in Dockerfiles for Python web servers that generic linters cannot know
about, each with its line and the fix. The Dockerfile is read by BuildKit's own parser (the ``dockerfile``
package: heredocs, ``# escape=``, ``# syntax=``), the ``.dockerignore`` by Docker's own matching rules.

The rules know the build's stages: what the image runs and holds is judged on the final stage and the stages
that reach it (through ``FROM`` or ``COPY --from``), how it is built on every stage.

Generic rules (pinned apt versions, exec form in general, ...) are hadolint's; our codes start with FL so
the two tools' findings never share a name.
"""

from __future__ import annotations

from pathlib import Path

from fastlaunch.core.exceptions import LintError
from fastlaunch.kit.dockerignore import Matcher
from fastlaunch.kit.lint.build import check_stage
from fastlaunch.kit.lint.context import check_context, ignore_file
from fastlaunch.kit.lint.findings import Finding
from fastlaunch.kit.lint.grammar import Instruction, parse
from fastlaunch.kit.lint.images import check_base, check_reference
from fastlaunch.kit.lint.runtime import check_runtime
from fastlaunch.kit.lint.stages import build_graph

__all__ = ["Finding", "Instruction", "ignore_file", "lint", "lint_file", "parse"]


def lint(text: str, dockerignore: Matcher | None, context: Path | None = None) -> list[Finding]:
    """Findings sorted by line, then code. ``dockerignore`` is the build's ignore rules (None: no file)."""
    build = build_graph(parse(text))
    if not build.stages:
        raise LintError("This Dockerfile has no FROM: Docker refuses to build it.", hint="Start it with FROM <image>.")
    chain = {s.index for s in build.chain()}
    feeding = build.feeding()
    findings: list[Finding] = []
    for stage in build.stages:
        if stage.parent is None:
            findings += check_base(stage.head, stage.base)
        for ins, how, image in build.external_references(stage):
            findings += check_reference(ins, how, image)
        findings += check_stage(stage.body, stage.index in chain)
    findings += check_context([i for s in build.stages if s.index in feeding for i in s.body], dockerignore, context)
    findings += check_runtime(build, context)
    unique = {(f.line, f.code, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.line, f.code, f.message))


def lint_file(dockerfile: Path, context: Path | None = None) -> list[Finding]:
    context = context if context is not None else dockerfile.parent
    found = ignore_file(dockerfile, context)
    try:
        matcher = Matcher.from_file(found) if found else None
    except ValueError as exc:  # what Docker itself refuses to build with
        raise LintError(f"{found}: {exc}.", hint="Fix that line: Docker refuses the build too.") from None
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LintError(f"Cannot read {dockerfile}: {exc}.", hint="Pass a readable UTF-8 Dockerfile.") from None
    return lint(text, matcher, context)
