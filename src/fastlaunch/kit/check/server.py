"""The connections a live PostgreSQL accepts from the app: ``max_connections`` minus the slots it keeps for
superusers (``superuser_reserved_connections``) and, from PostgreSQL 16, for roles with
``pg_use_reserved_connections`` (``reserved_connections``). Read through the driver the prestart steps use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastlaunch.core.urls import masked_url
from fastlaunch.prestart.database import DatabaseURL, connect, describe

TIMEOUT = 3.0
POSTGRES_DEFAULT = 100
SUPERUSER_RESERVED_DEFAULT = 3


@dataclass(frozen=True)
class ServerLimit:
    usable: int
    text: str  # the arithmetic and where the numbers came from
    live: bool


def default_limit(why: str) -> ServerLimit:
    usable = POSTGRES_DEFAULT - SUPERUSER_RESERVED_DEFAULT
    return ServerLimit(
        usable,
        f"PostgreSQL's defaults: max_connections {POSTGRES_DEFAULT} - superuser_reserved_connections "
        f"{SUPERUSER_RESERVED_DEFAULT} = {usable} ({why})",
        live=False,
    )


def configured_limit(max_connections: int, where: str) -> ServerLimit:
    usable = max_connections - SUPERUSER_RESERVED_DEFAULT
    return ServerLimit(
        usable,
        f"max_connections {max_connections} ({where}) - superuser_reserved_connections {SUPERUSER_RESERVED_DEFAULT} "
        f"= {usable}",
        live=False,
    )


async def _read(url: DatabaseURL) -> tuple[int, int, int | None]:
    async with connect(url, TIMEOUT) as execute:
        total = int(await execute("SHOW max_connections"))
        superuser = int(await execute("SHOW superuser_reserved_connections"))
        try:
            reserved: int | None = int(await execute("SHOW reserved_connections"))
        except Exception:  # before PostgreSQL 16 the setting does not exist
            reserved = None
    return total, superuser, reserved


def live_limit(database_url: str | None) -> ServerLimit:
    """The live server's limit when DATABASE_URL names a reachable PostgreSQL, else PostgreSQL's defaults."""
    if not database_url:
        return default_limit("DATABASE_URL is not set here")
    try:
        url = DatabaseURL.parse(database_url)
    except Exception:
        return default_limit("DATABASE_URL is not a database URL")
    if not url.is_postgres:
        return default_limit(f"DATABASE_URL is {url.backend}, not PostgreSQL")
    try:
        total, superuser, reserved = asyncio.run(asyncio.wait_for(_read(url), TIMEOUT * 2))
    except Exception as exc:  # any driver's error, or a missing driver: the defaults stand, and why
        reason = url.hide(describe(exc))
        return default_limit(f"{masked_url(database_url)} not reachable: {reason}")
    usable = total - superuser - (reserved or 0)
    parts = f"max_connections {total} - superuser_reserved_connections {superuser}"
    if reserved is not None:
        parts += f" - reserved_connections {reserved}"
    return ServerLimit(usable, f"{parts} = {usable} (read from {url.redacted})", live=True)
