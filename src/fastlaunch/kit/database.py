"""Which database a project uses, read from what it installs: the driver in its lock file or dependency list
decides the server (PostgreSQL, MySQL/MariaDB, none for SQLite) and the URL scheme SQLAlchemy needs for that
driver. Nothing is imported; the evidence is kept so ``fastlaunch init`` can print it."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name

Backend = Literal["postgresql", "mysql", "sqlite"]


@dataclass(frozen=True)
class Driver:
    package: str  # as the lock names it (normalised)
    backend: Backend
    scheme: str  # SQLAlchemy's dialect+driver for it


# In preference order when a project installs several and its code names none of their schemes: async drivers
# first (a FastAPI app's engine is more often async; a sync driver beside one is usually Alembic's).
DRIVERS = (
    Driver("asyncpg", "postgresql", "postgresql+asyncpg"),
    Driver("psycopg", "postgresql", "postgresql+psycopg"),
    Driver("psycopg-binary", "postgresql", "postgresql+psycopg"),
    Driver("psycopg2", "postgresql", "postgresql"),
    Driver("psycopg2-binary", "postgresql", "postgresql"),
    Driver("asyncmy", "mysql", "mysql+asyncmy"),
    Driver("aiomysql", "mysql", "mysql+aiomysql"),
    Driver("pymysql", "mysql", "mysql+pymysql"),
    Driver("mysqlclient", "mysql", "mysql+mysqldb"),
    Driver("mysql-connector-python", "mysql", "mysql+mysqlconnector"),
    Driver("aiosqlite", "sqlite", "sqlite+aiosqlite"),
)
LOCKS = ("uv.lock", "poetry.lock", "pdm.lock", "pylock.toml")
# SQLAlchemy picks the driver from the scheme (plain postgresql:// means psycopg2); a driver used on its own
# (asyncpg.connect, psycopg.connect, encode/databases) takes the plain scheme.
SQLALCHEMY = frozenset({"sqlalchemy", "sqlmodel"})
# A URL written in the code, alembic.ini or .env.example: only its scheme is kept.
URL_SCHEME = re.compile(r"\b((?:postgresql|postgres|mysql|mariadb|sqlite)(?:\+\w+)?)://")
DEFAULT_PORTS: dict[Backend, int] = {"postgresql": 5432, "mysql": 3306, "sqlite": 0}


@dataclass(frozen=True)
class Database:
    backend: Backend
    scheme: str  # the URL scheme the generated files write
    evidence: str  # why: "asyncpg in uv.lock"

    @property
    def server(self) -> bool:
        """Whether a database server must run beside the app (SQLite is a file)."""
        return self.backend != "sqlite"

    @property
    def port(self) -> int:
        return DEFAULT_PORTS[self.backend]

    def url(self, user: str, password: str, host: str, name: str) -> str:
        return f"{self.scheme}://{user}:{password}@{host}:{self.port}/{name}"

    def describe(self) -> str:
        what = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite (a file, no server)"}
        return f"{what[self.backend]}, {self.scheme}:// ({self.evidence})"


def installed_packages(root: Path, declared: set[str]) -> dict[str, str]:
    """Package name -> where it was seen: the first lock file present (what the image installs), else the
    names the project declares (``declared``, with the file they come from added by the caller)."""
    for lock in LOCKS:
        path = root / lock
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            continue
        packages = data.get("package") or data.get("packages") or []
        names = {canonicalize_name(str(p.get("name", ""))) for p in packages if isinstance(p, dict)}
        return {name: lock for name in names if name}
    return {canonicalize_name(name): "the dependencies" for name in declared}


def code_schemes(texts: list[tuple[str, str]]) -> dict[str, str]:
    """Scheme -> where: the database URL schemes written in the project's own files."""
    found: dict[str, str] = {}
    for where, text in texts:
        for match in URL_SCHEME.finditer(text):
            found.setdefault(match.group(1).replace("postgres+", "postgresql+").lower(), where)
    return found


def detect_database(packages: dict[str, str], schemes: dict[str, str]) -> Database | None:
    """The database the project talks to: a server driver it installs (the one its code's URL names, when it
    installs several), else SQLite when aiosqlite is installed or a sqlite URL is written, else none."""
    drivers = [d for d in DRIVERS if d.package in packages]
    servers = [d for d in drivers if d.backend != "sqlite"]
    if servers:
        named = [d for d in servers if d.scheme in schemes or (d.scheme == "postgresql" and "postgres" in schemes)]
        chosen = (named or servers)[0]
        evidence = f"{chosen.package} in {packages[chosen.package]}"
        scheme = chosen.scheme
        if not SQLALCHEMY & packages.keys():
            scheme = chosen.backend
            evidence += ", without SQLAlchemy: the plain scheme the driver itself takes"
        others = sorted({d.package for d in servers} - {chosen.package})
        if others and named:
            evidence += f"; also {', '.join(others)}: {chosen.scheme}:// is the scheme the code writes"
        elif others:
            evidence += f"; also {', '.join(others)}, taken second"
        return Database(chosen.backend, scheme, evidence)
    sqlite = next((s for s in schemes if s.startswith("sqlite")), None)
    if any(d.package == "aiosqlite" for d in drivers):
        return Database("sqlite", "sqlite+aiosqlite", f"aiosqlite in {packages['aiosqlite']}")
    if sqlite:
        return Database("sqlite", sqlite, f"{sqlite}:// in {schemes[sqlite]}")
    return None
