"""MkDocs hooks: the reference pages are generated from the code at build time, so they cannot go stale.

A page asks for a generated block with a comment on a line of its own:
``<!-- generated: settings -->`` (the settings table) or ``<!-- generated: help run -->`` (``fastlaunch run --help``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

GENERATED = re.compile(r"^<!-- generated: (?P<what>[a-z-]+)(?: (?P<arg>[a-z ]+))? -->$", re.M)


def cli_help(command: str) -> str:
    from typer.testing import CliRunner

    from fastlaunch.cli.commands import app

    # Plain text at a fixed width: the page must not depend on the terminal that built it.
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    result = CliRunner().invoke(app, [*command.split(), "--help"], env=env, prog_name="fastlaunch")
    if result.exit_code != 0:
        raise RuntimeError(f"fastlaunch {command} --help failed: {result.output}")
    text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")
    shown = f"fastlaunch {command} --help" if command else "fastlaunch --help"
    return f"```text\n$ {shown}\n{text}\n```\n"


def generated(match: re.Match[str]) -> str:
    what, arg = match["what"], (match["arg"] or "").strip()
    if what == "settings":
        from fastlaunch.core.settings_doc import render_markdown

        return render_markdown()
    if what == "help":
        return cli_help(arg)
    raise ValueError(f"unknown generated block {what!r}")


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """The bench's committed report and plots are part of the site (bench/results/ -> /bench/)."""
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    for path in sorted((root / "bench" / "results").glob("*")):
        if path.suffix in (".md", ".png"):
            files.append(File.generated(config, f"bench/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    os.environ.setdefault("COLUMNS", "100")
    return GENERATED.sub(generated, markdown)
