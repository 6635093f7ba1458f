"""The environment the generated files give the app: the database URL under every name the app reads it
(or as the parts it assembles it from), and a placeholder for each other setting the app cannot start
without. One entry per variable, with its value for compose, for the Kubernetes Secret and for .env.example."""

from __future__ import annotations

from dataclasses import dataclass

from fastlaunch.kit.app_settings import AppSetting, AppSettings
from fastlaunch.kit.database import Database

DB_HOST = "db"  # the compose service
FASTLAUNCH_URL = "DATABASE_URL"  # fastlaunch's own: the prestart step waits for it and locks migrations on it
# The compose-level variables the database service and the app share, per server.
COMPOSE_VARS = {
    "postgresql": ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"),
    "mysql": ("MARIADB_USER", "MARIADB_PASSWORD", "MARIADB_DATABASE"),
}


@dataclass(frozen=True)
class EnvEntry:
    name: str
    compose: str  # the value in compose.yaml (interpolated by compose)
    secret: str  # the placeholder in the Kubernetes Secret
    filled: bool  # init wrote a working value (the database), not a placeholder
    reason: str  # what the app reads it as, or why it is written


def _required(name: str) -> str:
    return f"${{{name}:?set {name}}}"


def _url_entries(db: Database, names: list[str], reason: str) -> list[EnvEntry]:
    user, password, database = COMPOSE_VARS[db.backend]
    compose = db.url(f"${{{user}:-app}}", _required(password), DB_HOST, f"${{{database}:-app}}")
    secret = db.url("USER", "PASSWORD", "HOST", "DATABASE")
    return [EnvEntry(n, compose, secret, True, reason) for n in names]


def _part_entries(db: Database, parts: dict[str, AppSetting]) -> list[EnvEntry]:
    user, password, database = COMPOSE_VARS[db.backend]
    values = {
        "host": (DB_HOST, "HOST"),
        "port": (str(db.port), str(db.port)),
        "user": (f"${{{user}:-app}}", "USER"),
        "password": (_required(password), "PASSWORD"),
        "name": (f"${{{database}:-app}}", "DATABASE"),
    }
    return [
        EnvEntry(s.name, *values[role], True, f"the database's {role}: {s.describe()}") for role, s in parts.items()
    ]


def app_environment(app: AppSettings, db: Database | None) -> list[EnvEntry]:
    """What compose, the Secret and .env.example set for the app, database first."""
    entries: list[EnvEntry] = []
    if db is not None and db.server:
        url = app.database_url
        names = [FASTLAUNCH_URL] + ([url.name] if url and url.name != FASTLAUNCH_URL else [])
        for name in names:
            reason = f"the database URL: {url.describe()}" if url and url.name == name else ""
            reason = reason or "fastlaunch's prestart step waits for the database (and locks migrations) on it"
            entries += _url_entries(db, [name], reason)
        parts = app.database_parts
        if parts:
            entries += [e for e in _part_entries(db, parts.parts) if e.name not in names]
    written = {e.name for e in entries}
    for setting in app.required:
        if setting.name in written or (db is not None and not db.server and setting is app.database_url):
            continue
        entries.append(EnvEntry(setting.name, _required(setting.name), "CHANGE-ME", False, setting.describe()))
    return entries


def warnings(entries: list[EnvEntry]) -> list[str]:
    """One line per setting the app requires and init could not fill."""
    return [
        f"the app requires {e.reason}, and fastlaunch cannot know its value: compose.yaml takes it from the "
        f"environment (${{{e.name}}}); .env.example and k8s/secret.yaml hold a placeholder."
        for e in entries
        if not e.filled
    ]
