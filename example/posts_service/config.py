"""Settings from the environment and ``.env`` (pydantic-settings).

Every problem is reported at once, by variable name, without echoing values: a mistyped DATABASE_URL
would otherwise print its password in the error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./posts.db"


class SettingsError(RuntimeError):
    """Invalid or missing settings; the message lists every variable to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    debug: bool = False
    # validate_default: the production check below must also run when the variable is absent.
    database_url: SecretStr | None = Field(default=None, validate_default=True)
    database_pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("database_url")
    @classmethod
    def _required_in_production(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            if info.data.get("environment") == "production":
                raise ValueError("required when ENVIRONMENT=production (e.g. postgresql+asyncpg://user:pw@host/db)")
            return None
        return value

    @property
    def database_url_value(self) -> str:
        """The URL to connect with (the SQLite file by default outside production)."""
        return self.database_url.get_secret_value() if self.database_url else DEFAULT_DATABASE_URL


def _describe(error: dict[str, object]) -> str:
    loc = error.get("loc") or ("settings",)
    name = str(loc[0]).upper() if isinstance(loc, tuple) else "SETTINGS"
    return f"{name}: {error.get('msg')}"


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(e)) for e in exc.errors())
        raise SettingsError(f"Invalid settings ({exc.error_count()}): {problems}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
