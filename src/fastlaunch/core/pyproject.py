"""Reads the ``[tool.fastlaunch]`` table of a project's pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from fastlaunch.core.exceptions import ConfigError


def read_pyproject(project_dir: Path) -> dict[str, Any]:
    """The whole parsed file, or {} when there is none."""
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}).",
            hint="TOML files are UTF-8: re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), then run again.",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}.",
            hint="Fix the syntax at that line (tomllib's message above), then run again.",
        ) from None


def read_tool_table(project_dir: Path) -> tuple[dict[str, Any], Path | None]:
    data = read_pyproject(project_dir)
    table = data.get("tool", {}).get("fastlaunch", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(
            f"{project_dir / 'pyproject.toml'}: [tool.fastlaunch] must be a table, got {type(table).__name__}.",
            hint='Write it as a table, e.g.\n[tool.fastlaunch]\napp = "main:app"',
        )
    return table, (project_dir / "pyproject.toml") if table else None
