"""The app's Python files, parsed once per content: every static reader of ``init`` (routes, settings, writes,
SQLite paths) and of ``check`` (once per deployment environment) walks the same trees."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path


def parsed(path: Path) -> ast.Module | None:
    """The file's syntax tree; None for a file that is not readable Python."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parse(path: Path, mtime_ns: int, size: int) -> ast.Module | None:  # noqa: ARG001 - the cache key
    try:
        return ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return None


def imports_probes(node: ast.AST) -> bool:
    """``from fastlaunch.probes import ...`` or ``from fastlaunch import probes``: the app serves both probes."""
    if not isinstance(node, ast.ImportFrom):
        return False
    module = node.module or ""
    return module.startswith("fastlaunch.probes") or (
        module == "fastlaunch" and any(alias.name == "probes" for alias in node.names)
    )
