"""Is the database already at head? Answered without Alembic: the usual start has nothing to migrate, and
``alembic upgrade head`` costs a fresh interpreter that imports Alembic, the project's env.py and the app's
models (over a second on a small machine) only to find that out.

The script directory's head is read from the migration files' ``revision``/``down_revision`` literals, the
database's from its ``alembic_version`` table. Anything this reading does not fully understand (a package
``script_location``, extra version locations, branch labels, dependencies, several heads, a revision that is not a
plain string) answers "don't know", and Alembic runs: the shortcut may only skip work, never decide it.
"""

from __future__ import annotations

import ast
import configparser
import logging
import sqlite3
from contextlib import closing
from pathlib import Path

from fastlaunch.prestart.database import ATTEMPT_TIMEOUT, DatabaseURL, connect

log = logging.getLogger("fastlaunch")

# Options that make the script directory more than one folder of plain revision files.
UNSUPPORTED_OPTIONS = ("version_locations", "recursive_version_locations", "sourceless")


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...  # not a literal: unknown


def _revision_attributes(path: Path) -> dict[str, object] | None:
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = _literal(value)
    return found


def script_head(ini: Path, project_dir: Path) -> str | None:
    """The one head revision of the script directory named by ``ini``, or None when unsure."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read(ini, encoding="utf-8")
        options = parser["alembic"]
        location = options.get("script_location")
        if any(options.get(name, "").strip().lower() not in ("", "false") for name in UNSUPPORTED_OPTIONS):
            return None
    except (configparser.Error, KeyError, UnicodeDecodeError):
        return None
    if not location or ":" in location:  # "package:dir" is resolved by importing the package
        return None
    versions = project_dir / location / "versions"  # alembic runs with the project directory as cwd
    if not versions.is_dir():
        return None
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name == "__init__.py" or path.name.startswith(".#"):
            continue
        attributes = _revision_attributes(path)
        if attributes is None:
            return None
        revision, down = attributes.get("revision"), attributes.get("down_revision")
        if not isinstance(revision, str) or attributes.get("branch_labels") or attributes.get("depends_on"):
            return None
        if down is None:
            pass
        elif isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            parents.update(down)
        else:
            return None
        revisions.add(revision)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _sqlite_versions(url: DatabaseURL, project_dir: Path) -> set[str] | None:
    if url.path in ("", "/", "/:memory:"):
        return None
    database = Path(url.path[1:])
    database = database if database.is_absolute() else project_dir / database
    if not database.is_file():
        return None
    try:
        # Read-only: a missing table must not create anything.
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=ATTEMPT_TIMEOUT)) as db:
            return {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return None


async def _postgres_versions(url: DatabaseURL) -> set[str] | None:
    try:
        async with connect(url, ATTEMPT_TIMEOUT) as execute:
            joined = await execute("SELECT string_agg(version_num, ' ') FROM alembic_version")
    except Exception:  # no table yet, or any other reason: alembic will tell
        return None
    return set(joined.split()) if isinstance(joined, str) else set()


def database_versions(url: DatabaseURL | None, project_dir: Path) -> set[str] | None:
    """The revisions stamped in ``alembic_version``, or None when they cannot be read cheaply."""
    if url is None:
        return None
    if url.is_sqlite:
        return _sqlite_versions(url, project_dir)
    if url.is_postgres:
        import asyncio

        return asyncio.run(_postgres_versions(url))
    return None


def at_head(ini: Path, project_dir: Path, url: DatabaseURL | None) -> str | None:
    """The head revision when the database is known to be at it (nothing to migrate), else None."""
    head = script_head(ini, project_dir)
    if head is None:
        log.debug("Cannot read the head revision of %s without Alembic; running it", ini)
        return None
    versions = database_versions(url, project_dir)
    if versions != {head}:
        return None
    return head
