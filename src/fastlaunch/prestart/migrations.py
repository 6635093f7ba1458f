"""Prestart step: ``alembic upgrade head``, run by exactly one of the replicas that start together.

Every replica takes the same lock, then runs the upgrade: the first one migrates, the others find the
schema at head and do nothing. The lock is a PostgreSQL session advisory lock (released by the server if
the holder dies), or for SQLite and other local setups an ``flock`` on a file next to the database.
Alembic runs as a subprocess of the app's interpreter, so its env.py imports the app as it would alone; when
the database is already at head (read without Alembic, see ``revisions``) it does not run at all.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastlaunch.core.alembic_ini import find_alembic_ini
from fastlaunch.core.exceptions import MigrationError
from fastlaunch.core.settings import Settings
from fastlaunch.prestart.database import ATTEMPT_TIMEOUT, DatabaseURL, connect, describe
from fastlaunch.prestart.overlaps import url_from_elsewhere
from fastlaunch.prestart.revisions import at_head

log = logging.getLogger("fastlaunch")

# One fixed 64-bit key: the lock is per database, and fastlaunch takes no other advisory locks.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"fastlaunch:migrations").digest()[:8], "big", signed=True)


def alembic_command(ini: Path) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"]


def _alembic(settings: Settings, ini: Path) -> None:
    env = dict(os.environ)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url  # also when it came from [tool.fastlaunch]
    # Output is not captured: alembic's own lines ("Running upgrade ...") stream into the launcher's log.
    result = subprocess.run(alembic_command(ini), cwd=settings.project_dir, env=env, check=False)
    if result.returncode != 0:
        raise MigrationError(
            f"alembic upgrade head ({ini}) failed with exit code {result.returncode} (its output is above); "
            "the server was not started.",
            hint="Fix the migration or the database, then start again; MIGRATE=off skips this step.",
        )


def lock_file(settings: Settings, url: DatabaseURL | None) -> Path:
    """Next to the SQLite file (the directory replicas share with it), else in the temp directory, named for the
    project directory (processes of one machine share it; nothing is left in the project)."""
    if url and url.is_sqlite and url.path not in ("", "/", "/:memory:"):
        database = Path(url.path[1:])  # sqlite:///relative.db, sqlite:////absolute.db
        database = database if database.is_absolute() else settings.project_dir / database
        return database.with_name(database.name + ".migrate.lock")
    digest = hashlib.sha256(str(settings.project_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"fastlaunch-migrate-{digest}.lock"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    try:
        handle = path.open("a")
    except OSError as exc:
        raise MigrationError(
            f"Cannot create the migration lock file {path}: {exc.strerror}.",
            hint="Make its directory writable, or set MIGRATE=off and migrate in a separate job.",
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Another process is migrating (lock %s); waiting for it", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _under_advisory_lock(settings: Settings, ini: Path, url: DatabaseURL) -> None:
    try:
        async with connect(url, ATTEMPT_TIMEOUT) as execute:
            if not await execute(f"SELECT pg_try_advisory_lock({LOCK_KEY})"):
                log.info("Another replica is migrating (PostgreSQL advisory lock %d); waiting for it", LOCK_KEY)
                await execute(f"SELECT pg_advisory_lock({LOCK_KEY})")
            try:
                await asyncio.to_thread(_alembic, settings, ini)
            finally:
                await execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(
            f"Cannot take the migration lock on {url.redacted}: {url.hide(describe(exc))}.",
            hint="Check that the database is up and DATABASE_URL is right; MIGRATE=off skips this step.",
        ) from None


def _sqlite_only(ini: Path, env: Path) -> bool:
    """Whether the migrations are for SQLite (whose file lock is the right lock): the only URL scheme the
    ini and env.py write is sqlite."""
    try:
        text = ini.read_text(errors="replace") + env.read_text(errors="replace")
    except OSError:
        return False
    return "sqlite" in text and not any(s in text for s in ("postgres", "mysql", "mariadb", "mssql", "oracle"))


def run_migrations(settings: Settings) -> None:
    if settings.migrate == "off":
        log.debug("MIGRATE=off: not running migrations")
        return
    found = find_alembic_ini(settings.project_dir)
    ini = found or settings.project_dir / "alembic.ini"
    if found and found.parent != settings.project_dir:
        log.info("Using %s, run from %s", found.relative_to(settings.project_dir), settings.project_dir)
    if found is None:
        if settings.migrate == "on":
            raise MigrationError(
                f"MIGRATE=on ({settings.source('migrate').describe()}) but {ini} does not exist.",
                hint="Run fastlaunch from the project holding alembic.ini (its directory, or two levels above at "
                "most), or set MIGRATE=auto/off.",
            )
        log.debug("No alembic.ini in %s (nor two levels down); no migrations to run", settings.project_dir)
        return
    if importlib.util.find_spec("alembic") is None:
        raise MigrationError(
            f"{ini} exists but Alembic is not installed in this environment ({sys.executable}).",
            hint="pip install alembic in the app's environment, or set MIGRATE=off.",
        )
    url = DatabaseURL.parse(settings.database_url) if settings.database_url else None
    head = at_head(ini, settings.project_dir, url)
    if head:
        log.info("Migrations are at head (%s, read from alembic_version); alembic not run", head)
        return
    if url and url.is_postgres:
        log.info("Migrating %s: alembic upgrade head under a PostgreSQL advisory lock", url.redacted)
        asyncio.run(_under_advisory_lock(settings, ini, url))
    else:
        path = lock_file(settings, url)
        log.info("Migrating: alembic upgrade head under the file lock %s", path)
        env = url_from_elsewhere(ini) if url is None else None
        if env is not None:
            # SQLite's lock belongs next to its file, which replicas share; another database has its own lock.
            fix = (
                "set DATABASE_URL to that SQLite URL (the lock then sits next to the database file)"
                if _sqlite_only(ini, env)
                else "when that is a PostgreSQL database, set DATABASE_URL to its URL (fastlaunch then takes a "
                "PostgreSQL advisory lock)"
            )
            log.warning(
                "The migration lock is only a file lock (%s): it serialises processes on this file system, not "
                "replicas in separate containers. DATABASE_URL is not set and %s builds its database URL itself; "
                "%s, or set MIGRATE=off and migrate once in a Job.",
                path,
                env,
                fix,
            )
        with file_lock(path):
            _alembic(settings, ini)
    log.info("Migrations are at head")
