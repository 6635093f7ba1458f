"""What an app reads from its environment, read from its source without importing it: pydantic-settings (v2)
and pydantic v1 BaseSettings, Starlette's Config, os.environ; required when the app has no default."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fastlaunch.kit.app_settings import AppSettings, read_app_settings


def read(tmp_path: Path, **files: str) -> AppSettings:
    paths = []
    for name, text in files.items():
        path = tmp_path / (name.replace("__", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    return read_app_settings(tmp_path, paths)


def names(found: AppSettings) -> dict[str, bool]:
    return {s.name: s.required for s in found.settings}


def test_pydantic_settings_v2_prefix_aliases_nested_and_defaults(tmp_path: Path) -> None:
    found = read(
        tmp_path,
        app__config="""
        from typing import Optional
        from pydantic import AliasChoices, BaseModel, Field
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Mail(BaseModel):
            host: str
            port: int = 25

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="app_", env_nested_delimiter="__")
            db_uri: str
            debug: bool = False
            token: Optional[str]
            secret: str = Field(..., validation_alias=AliasChoices("SECRET_KEY", "KEY"))
            level: str = Field("info", alias="LOG_LEVEL")
            workers: int = Field(default_factory=lambda: 2)
            mail: Mail

        settings = Settings()
        """,
    )
    assert names(found) == {
        "APP_DB_URI": True,
        "APP_DEBUG": False,
        "APP_TOKEN": True,  # v2: Optional without a default is still required
        "SECRET_KEY": True,  # an alias ignores the prefix
        "LOG_LEVEL": False,
        "APP_WORKERS": False,
        "APP_MAIL__HOST": True,
        "APP_MAIL__PORT": False,
    }
    assert found.get("APP_DB_URI") is not None and found.get("APP_DB_URI").where == "app/config.py:12"  # type: ignore[union-attr]
    assert found.database_url is not None and found.database_url.name == "APP_DB_URI"


def test_pydantic_v1_config_class_env_fields_and_inheritance(tmp_path: Path) -> None:
    found = read(
        tmp_path,
        settings="""
        from typing import Optional
        from pydantic import BaseSettings, Field

        class Base(BaseSettings):
            POSTGRES_SERVER: str
            POSTGRES_USER: str
            POSTGRES_PASSWORD: str
            POSTGRES_DB: str = "app"
            SENTRY_DSN: Optional[str]

        class Settings(Base):
            API_TOKEN: str = Field(..., env="TOKEN")

            class Config:
                case_sensitive = True
        """,
    )
    assert names(found) == {
        "POSTGRES_SERVER": True,
        "POSTGRES_USER": True,
        "POSTGRES_PASSWORD": True,
        "POSTGRES_DB": False,
        "SENTRY_DSN": False,  # v1 gives Optional the default None
        "TOKEN": True,
    }
    parts = found.database_parts
    assert parts is not None and {r: s.name for r, s in parts.parts.items()} == {
        "host": "POSTGRES_SERVER",
        "user": "POSTGRES_USER",
        "password": "POSTGRES_PASSWORD",
        "name": "POSTGRES_DB",
    }
    assert found.database_url is None


def test_prefixed_parts_and_nested_settings_classes(tmp_path: Path) -> None:
    found = read(
        tmp_path,
        config="""
        from pydantic_settings import BaseSettings

        class DatabaseSettings(BaseSettings):
            model_config = {"env_prefix": "DB_"}
            postgres_host: str
            postgres_port: int = 5432
            postgres_user: str
            postgres_password: str
            postgres_name: str

        class Settings(BaseSettings):
            db: DatabaseSettings = DatabaseSettings()
            app_name: str = "svc"
        """,
    )
    assert names(found)["DB_POSTGRES_HOST"] and not names(found)["DB_POSTGRES_PORT"]
    assert "DB" not in names(found)  # a settings class of its own: read under its own prefix
    parts = found.database_parts
    assert (
        parts is not None
        and parts.prefix == "DB_POSTGRES_"
        and set(parts.parts)
        == {
            "host",
            "port",
            "user",
            "password",
            "name",
        }
    )


def test_starlette_config_and_os_environ(tmp_path: Path) -> None:
    found = read(
        tmp_path,
        main="""
        import os
        from os import environ, getenv
        from starlette.config import Config
        from starlette.datastructures import Secret

        config = Config(".env")
        API_KEY = config("API_KEY", cast=Secret)
        DEBUG = config("DEBUG", cast=bool, default=False)
        LIMIT = config("LIMIT", int, 10)
        HOME = os.environ["MODEL_DIR"]
        REGION = os.environ.get("REGION", "eu")
        ZONE = os.getenv("ZONE")
        TEAM = environ.get("TEAM")
        OWNER = getenv("OWNER", "me")
        """,
    )
    assert names(found) == {
        "API_KEY": True,
        "DEBUG": False,
        "LIMIT": False,
        "MODEL_DIR": True,
        "REGION": False,
        "ZONE": False,
        "TEAM": False,
        "OWNER": False,
    }
    assert found.get("API_KEY").describe() == "API_KEY (Starlette Config, main.py:8)"  # type: ignore[union-attr]


def test_read_twice_required_once_is_required_and_broken_files_are_skipped(tmp_path: Path) -> None:
    found = read(
        tmp_path,
        a='import os\nX = os.getenv("DATABASE_URL")\n',
        b='import os\nX = os.environ["DATABASE_URL"]\n',
        c="def broken(:\n",
    )
    assert names(found) == {"DATABASE_URL": True}
    assert found.settings[0].where == "a.py:2"
