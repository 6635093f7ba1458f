"""fastlaunch lint on a corpus of Dockerfiles written here in the shapes real projects use (tests/assets/lint/):
each file's findings are exactly the expected ones, so no false positive and no miss; the docs' lint page
reports the precision and recall this gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import ROOT

from fastlaunch.kit.dockerignore import Matcher
from fastlaunch.kit.lint import lint, lint_file

CORPUS = ROOT / "tests" / "assets" / "lint"
# (line, code) expected per Dockerfile; every other line must stay silent. Comments name the trap a file sets.
EXPECTED: dict[str, set[tuple[int, str]]] = {
    # `pip install poetry` in a stage only exported from (no FL007); `./poetry.lock*` copies files (no FL006)
    "poetry-export": {(8, "FL004")},
    "poetry-single": {(1, "FL004"), (3, "FL007")},  # `poetry run` does not sync: no FL018
    # the misses: loopback host, port other than EXPOSE, `uv run` at start, uv:latest inside the build
    "uv-cache-mount": {(2, "FL017"), (14, "FL014"), (14, "FL015"), (14, "FL018")},
    "uv-clean": set(),  # uv's two-step install with cache mounts, pinned uv image, ARG-built tags, PORT by ENV
    "pdm": {(6, "FL001")},  # the code copied before `pdm install`; `pip install -U pdm` is a tool, not the deps
    "dev-target": {(14, "FL019"), (19, "FL011")},  # USER inherited from the base stage: no FL004
    "tiangolo": {(1, "FL004"), (1, "FL010")},
    "dropin": set(),  # master root, workers `app`: no FL004
    "dropin-mirror": {(3, "FL016")},  # the drop-in under a mirror's name; `ENV KEY value` without = is fine
    "alpine": {(3, "FL016"), (7, "FL007"), (8, "FL006")},  # $HOST:$PORT expanded from ENV in sh -c
    "distroless": set(),  # the :nonroot distroless image runs as uid 65532; the builder's pip cache never ships
    "distroless-root": {(5, "FL004"), (5, "FL005")},
    "env-address": {(9, "FL014"), (9, "FL015")},  # HOST and PORT set by ENV for fastlaunch run
    "wheels-stage": set(),  # `pip install build` after COPY . . in a wheel-building stage; RUN --mount=from=stage
    "gunicorn-conf": set(),  # the address is in the config file: unknown, not guessed
    "hypercorn": {(8, "FL014")},  # hypercorn's default bind is 127.0.0.1:8000
    "granian": {(9, "FL012"), (9, "FL015")},  # GRANIAN_HOST/GRANIAN_PORT from ENV
    "mount-from": {(3, "FL017")},
    "paas-port": {(9, "FL020")},  # exec form: gunicorn gets the text `0.0.0.0:$PORT`
    "bash-entrypoint": set(),  # bash execs the last command of an && chain; ${PORT:-8000}; USER from the base
}


def found(name: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in lint_file(CORPUS / name / "Dockerfile")}


def test_the_table_covers_the_corpus() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").is_file())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_findings_are_exactly_the_expected_ones(name: str) -> None:
    assert found(name) == EXPECTED[name]


def figures() -> str:
    """The sentence the docs' lint page carries, computed from the corpus."""
    true_positives = false_positives = misses = 0
    for name, expected in EXPECTED.items():
        got = found(name)
        true_positives += len(got & expected)
        false_positives += len(got - expected)
        misses += len(expected - got)
    precision = true_positives / ((true_positives + false_positives) or 1)
    recall = true_positives / ((true_positives + misses) or 1)
    return (
        f"{len(EXPECTED)} Dockerfiles, {true_positives + misses} expected findings: precision {precision:.0%} "
        f"({false_positives} false positives), recall {recall:.0%} ({misses} missed)"
    )


def test_the_lint_page_reports_the_corpus_figures() -> None:
    page = (ROOT / "docs" / "deploy" / "lint.md").read_text()
    assert figures() in page, f"docs/deploy/lint.md should say: {figures()}"


def test_the_drop_in_migration_example_lints_clean() -> None:
    page = (ROOT / "docs" / "deploy" / "dropin.md").read_text()
    example = re.search(r"```dockerfile\n(.*?)```", page, re.S)
    assert example is not None
    assert lint(example.group(1), Matcher.from_file(CORPUS / "dropin" / ".dockerignore"), Path("/nonexistent")) == []
