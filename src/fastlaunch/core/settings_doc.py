"""Renders the settings table as Markdown, for the docs' settings reference page (scripts/mkdocs_hooks.py)."""

from __future__ import annotations

from fastlaunch.core.settings import SETTINGS


def render_markdown() -> str:
    lines = [
        "| environment | `[tool.fastlaunch]` | command line | default | what it does | vs. the official image |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.doc_default if s.doc_default is not None else ("" if s.default is None else str(s.default))
        default_cell = f"`{default}`" if default not in ("", None) else "(empty)"
        lines.append(
            f"| `{s.env}` | `{s.name}` | {f'`{s.cli}`' if s.cli else ''} | {default_cell} | {s.help} | {s.image} |"
        )
    return "\n".join(lines) + "\n"
