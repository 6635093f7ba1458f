"""The console examples in the docs are real: each block marked ``<!-- check: project=DIR -->`` is run again and
fails when what matters drifts: the commands, the key lines of their output, the exit codes they print.

Rules of a checked block (a ```` ```console ```` block right after the marker):
- ``$ command`` lines run one after another with ``bash -c`` in a copy of ``project`` (relative to the repository);
  ``$ pip install ...`` lines are shown, not run (the test environment has fastlaunch already).
- Every other non-empty line is output that must appear, in order, in what the commands printed. Numbers may
  differ (a machine's CPUs, ports, PIDs, times), ``...`` stands for any text, and a log line's
  ``[time] [pid]`` prefix may be written ``[...]``.
- ``as=/srv/app`` in the marker: the project's path, as the page shows it (the copy's real path is replaced).
- ``serve`` in the marker: the last ``fastlaunch run`` command is a server. It runs in the background until its
  lines have appeared; the commands after it run against it; then its process group is stopped. ``:8000`` in
  commands is the server's port, a free one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import FASTLAUNCH, ROOT, free_port

MARKER = re.compile(r"<!-- check: (?P<options>[^>]*?) -->\n+```console\n(?P<body>.*?)\n```", re.S)
LOG_PREFIX = re.compile(r"^\[\d{4}-\d\d-\d\d [^\]]*\] \[\d+\] ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Example:
    page: str
    project: Path
    serve: bool
    steps: list[Step]
    shown_as: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.steps[0].command[:40]}"


def examples() -> list[Example]:
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for match in MARKER.finditer(page.read_text()):
            options = dict(o.partition("=")[::2] for o in match["options"].split())
            steps: list[Step] = []
            for line in match["body"].splitlines():
                if line.startswith("$ "):
                    steps.append(Step(line[2:]))
                elif line.strip() and steps:
                    steps[-1].expected.append(line)
            rel = str(page.relative_to(ROOT / "docs"))
            found.append(Example(rel, ROOT / options["project"], "serve" in options, steps, options.get("as")))
    return found


def normalized(line: str) -> str:
    line = LOG_PREFIX.sub("[...] ", ANSI.sub("", line))
    return re.sub(r"\s+", " ", re.sub(r"\d+", "0", line)).strip()


def pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in normalized(expected).split("...")]
    return re.compile(".*".join(parts))


def missing(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in order, among the output's lines."""
    lines = [normalized(line) for line in output.splitlines()]
    absent, at = [], 0
    for want in expected:
        if normalized(want) in ("...", "[...]"):
            continue
        regex = pattern(want)
        hit = next((i for i in range(at, len(lines)) if regex.fullmatch(lines[i])), None)
        if hit is None:
            absent.append(want)
        else:
            at = hit + 1
    return absent


def shell(command: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.stdout + done.stderr


def shown(output: str, project: Path, shown_as: str | None) -> str:
    return output.replace(str(project), shown_as) if shown_as else output


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_console_example_is_real(example: Example, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(example.project, project)
    port = str(free_port())
    path = f"{Path(FASTLAUNCH).parent}:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "COLUMNS": "120", "NO_COLOR": "1", "HOST": "127.0.0.1"}
    steps = [s for s in example.steps if not s.command.startswith("pip install")]
    problems: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    log = tmp_path / "server.log"
    try:
        if example.serve:
            at = max(i for i, s in enumerate(steps) if "fastlaunch run" in s.command)
            for step in steps[:at]:
                output = shown(shell(step.command, project, env), project, example.shown_as)
                problems += [f"$ {step.command}\n  missing: {m}" for m in missing(step.expected, output)]
            first, steps = steps[at], steps[at + 1 :]
            command = first.command.replace(":8000", f":{port}")
            with log.open("wb") as out:
                server = subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=project,
                    env={**env, "PORT": port},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 30

            def served() -> str:
                return shown(log.read_text(errors="replace"), project, example.shown_as)

            while missing(first.expected, served()) and time.monotonic() < deadline:
                assert server.poll() is None, served()
                time.sleep(0.2)
            problems += [f"$ {first.command}\n  missing: {m}" for m in missing(first.expected, served())]
        for step in steps:
            output = shown(shell(step.command.replace(":8000", f":{port}"), project, env), project, example.shown_as)
            problems += [
                f"$ {step.command}\n  missing: {m}\n  output:\n{output[-2000:]}" for m in missing(step.expected, output)
            ]
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    assert not problems, "\n".join(problems)


def test_the_checker_catches_drift() -> None:
    assert (
        missing(
            ["[...] [INFO] Listening at: http://127.0.0.1:8000 (...)"],
            "[2026-01-01 00:00:00 +0000] [42] [INFO] Listening at: http://127.0.0.1:39123 (42)",
        )
        == []
    )
    assert missing(["Error: Invalid configuration (2 problems):"], "Error: Invalid configuration (1 problem):") != []
    assert missing(["a", "b"], "b\na") == ["b"]  # order matters
    assert len(examples()) >= 2
