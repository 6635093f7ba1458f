"""Prestart step: wait until ``DATABASE_URL`` accepts connections, instead of ``sleep 10``.

Each attempt is a TCP connect (cheap, needs no driver, and says "connection refused" plainly) followed,
when SQLAlchemy is installed, by a real login and ``SELECT 1`` through the app's own driver: PostgreSQL
accepts TCP while it is still starting up or before its role and database exist, so a port check alone
would let the app start too early. Attempts back off exponentially within a total budget
(``DB_WAIT_TIMEOUT``). The password never reaches a log line or an error message.

SQLAlchemy and the drivers are imported only here, inside the step (run in a child process, see
``child``), and only when DATABASE_URL is set; asyncpg URLs need no SQLAlchemy at all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from fastlaunch.core.exceptions import ConfigError, DatabaseError
from fastlaunch.core.settings import Settings

log = logging.getLogger("fastlaunch")

DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}
FIRST_DELAY = 0.25
MAX_DELAY = 5.0
ATTEMPT_TIMEOUT = 5.0

Execute = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True)
class DatabaseURL:
    raw: str
    scheme: str  # "postgresql+asyncpg"
    host: str | None
    port: int | None
    path: str
    password: str | None

    @classmethod
    def parse(cls, raw: str) -> DatabaseURL:
        parts = urlsplit(raw)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.scheme or port == -1:
            shown = redact(raw, parts.password)
            raise ConfigError(
                f"DATABASE_URL={shown!r} is not a database URL.",
                hint="Use DIALECT[+DRIVER]://USER:PASSWORD@HOST:PORT/NAME, "
                "e.g. postgresql+asyncpg://app:secret@127.0.0.1:5432/app.",
            )
        backend = parts.scheme.split("+")[0]
        return cls(raw, parts.scheme, parts.hostname, port or DEFAULT_PORTS.get(backend), parts.path, parts.password)

    @property
    def backend(self) -> str:
        return self.scheme.split("+")[0]

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.backend in ("postgresql", "postgres")

    @property
    def redacted(self) -> str:
        return redact(self.raw, self.password)

    def hide(self, text: str) -> str:
        return redact(text, self.password)


def redact(text: str, password: str | None) -> str:
    """The text with the password (as written and percent-decoded) replaced by ``***``."""
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text


def describe(exc: BaseException) -> str:
    """One line naming the failure; SQLAlchemy's wrapper is unwrapped to the driver's own error."""
    exc = getattr(exc, "orig", None) or exc
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def sqlalchemy_available() -> bool:
    return importlib.util.find_spec("sqlalchemy") is not None


def asyncpg_dsn(url: DatabaseURL) -> str | None:
    """The libpq-style DSN asyncpg takes, for a plain ``postgresql+asyncpg://`` URL; None when SQLAlchemy must
    translate it (query options are its connect arguments, not asyncpg's DSN parameters)."""
    parts = urlsplit(url.raw)
    if url.scheme not in ("postgresql+asyncpg", "postgres+asyncpg") or parts.query or not parts.hostname:
        return None
    return parts._replace(scheme="postgresql").geturl()


@asynccontextmanager
async def _asyncpg(dsn: str, timeout: float) -> AsyncIterator[Execute]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:

        async def execute(sql: str) -> Any:
            return await conn.fetchval(sql)

        yield execute
    finally:
        await conn.close()


@asynccontextmanager
async def connect(url: DatabaseURL, timeout: float) -> AsyncIterator[Execute]:
    """One autocommit connection through the app's own driver (async or not); yields a function that runs a
    statement and returns its first column. asyncpg is driven directly (importing SQLAlchemy as well costs
    about 0.35 s more CPU on every start); any other driver goes through SQLAlchemy."""
    dsn = asyncpg_dsn(url)
    if dsn:
        async with _asyncpg(dsn, timeout) as execute_direct:
            yield execute_direct
        return
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    sa_url = sa.engine.make_url(url.raw)
    if sa_url.get_dialect().is_async:
        from sqlalchemy.ext.asyncio import create_async_engine

        async_engine = create_async_engine(sa_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            async with asyncio.timeout(timeout):
                async_conn = await async_engine.connect()
            try:

                async def execute_async(sql: str) -> Any:
                    return (await async_conn.execute(sa.text(sql))).scalar()

                yield execute_async
            finally:
                await async_conn.close()
        finally:
            await async_engine.dispose()
        return
    engine = sa.create_engine(sa_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        conn = await asyncio.wait_for(asyncio.to_thread(engine.connect), timeout)
        try:

            async def execute_sync(sql: str) -> Any:
                return await asyncio.to_thread(lambda: conn.execute(sa.text(sql)).scalar())

            yield execute_sync
        finally:
            conn.close()
    finally:
        engine.dispose()


async def _login(url: DatabaseURL, timeout: float) -> None:
    async with connect(url, timeout) as execute:
        await execute("SELECT 1")


def attempt(url: DatabaseURL, timeout: float) -> None:
    """One try; raises on failure. A missing driver is a configuration problem, not worth waiting for."""
    if url.host and url.port and not url.host.startswith("/"):
        with socket.create_connection((url.host, url.port), timeout=timeout):
            pass
    if not asyncpg_dsn(url) and not sqlalchemy_available():
        return
    try:
        asyncio.run(_login(url, timeout))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"DATABASE_URL={url.redacted!r} names a driver that is not installed here ({exc.name}).",
            hint=f"Install the driver in the app's environment (pip install {exc.name}), or fix the URL's "
            "+driver part.",
        ) from None


def wait_for_database(
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    if not settings.database_url:
        log.debug("DATABASE_URL is not set; not waiting for a database")
        return
    url = DatabaseURL.parse(settings.database_url)
    if url.is_sqlite:
        log.debug("DATABASE_URL is SQLite: a local file, nothing to wait for")
        return
    budget = settings.db_wait_timeout
    if budget == 0:
        log.info("DB_WAIT_TIMEOUT=0: not waiting for %s", url.redacted)
        return
    deadline = clock() + budget
    delay = FIRST_DELAY
    number = 0
    while True:
        number += 1
        try:
            attempt(url, timeout=max(0.5, min(ATTEMPT_TIMEOUT, deadline - clock())))
        except ConfigError:
            raise
        except Exception as exc:  # every driver has its own errors; all of them mean "not yet"
            reason = url.hide(describe(exc))
            remaining = deadline - clock()
            if remaining <= 0:
                raise DatabaseError(
                    f"Database {url.redacted} not reachable within DB_WAIT_TIMEOUT={budget}s "
                    f"({number} attempts; last: {reason}); the server was not started."
                ) from None
            pause = min(delay, remaining)
            log.info(
                "Waiting for database %s: attempt %d failed (%s); next in %.2gs", url.redacted, number, reason, pause
            )
            sleep(pause)
            delay = min(delay * 2, MAX_DELAY)
        else:
            log.info("Database %s is ready (attempt %d)", url.redacted, number)
            return
