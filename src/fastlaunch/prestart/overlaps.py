"""Where the project's own prestart files overlap fastlaunch's steps: a line of the PRE_START_PATH script that
runs ``alembic upgrade`` (fastlaunch migrates too), an Alembic ``env.py`` that builds its own database URL
(fastlaunch locks the DATABASE_URL database). The files are read, never run; the launcher warns in one line."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

# A shell line that runs Alembic's upgrade (alembic upgrade head, python -m alembic ... upgrade ...).
_UPGRADE = re.compile(r"^\s*[^#]*\balembic\b[^#]*\bupgrade\b")


def migrating_line(script: Path) -> tuple[int, str] | None:
    """The first line of the prestart script that runs ``alembic upgrade``, with its number."""
    try:
        lines = script.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next(((n, line.strip()) for n, line in enumerate(lines, 1) if _UPGRADE.match(line)), None)


def alembic_env(ini: Path) -> Path | None:
    """The env.py of the Alembic setup that ``ini`` describes (script_location, default ``alembic``)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    location = parser.get("alembic", "script_location", fallback="alembic").replace("%(here)s", str(ini.parent))
    if ":" in location and not Path(location).exists():
        return None  # a package resource (package:dir): not a file to read here
    env = ini.parent / location / "env.py"
    return env if env.is_file() else None


def url_from_elsewhere(ini: Path) -> Path | None:
    """The env.py when it never mentions DATABASE_URL: it builds the database URL itself (from the app's
    settings, POSTGRES_* variables...), so fastlaunch cannot know which database to lock."""
    env = alembic_env(ini)
    if env is None:
        return None
    try:
        return None if "DATABASE_URL" in env.read_text(errors="replace") else env
    except OSError:
        return None
