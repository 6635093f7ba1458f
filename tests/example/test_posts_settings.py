from __future__ import annotations

from pathlib import Path

import pytest
from posts import EXAMPLE
from posts_service.config import Settings, SettingsError, load_settings
from support import free_port, run_cli

from fastlaunch.core.exceptions import ExitCode


def test_production_lists_every_missing_or_invalid_variable(tmp_path: Path) -> None:
    env = {"ENVIRONMENT": "production", "DEBUG": "maybe", "DATABASE_POOL_SIZE": "0", "PORT": str(free_port())}
    result = run_cli(["run", "--host", "127.0.0.1"], cwd=EXAMPLE, env=env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "Invalid settings" in line]
    assert len(lines) == 1, result.stderr  # one message, naming all three
    assert "Invalid settings (3): DEBUG: " in lines[0]
    assert "DATABASE_URL: Value error, required when ENVIRONMENT=production" in lines[0]
    assert "DATABASE_POOL_SIZE: Input should be greater than or equal to 1" in lines[0]
    assert lines[0].startswith("posts_service: Invalid settings") and "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr


def test_production_settings_message_without_prestart(tmp_path: Path) -> None:
    # How compose and Kubernetes start the app (the migrate service / Job ran prestart): the worker meets the
    # settings first. The same one line, no traceback, and the start stops instead of restarting workers.
    env = {"ENVIRONMENT": "production", "DEBUG": "maybe", "PORT": str(free_port())}
    result = run_cli(["run", "--host", "127.0.0.1", "--no-prestart"], cwd=EXAMPLE, env=env)
    assert result.returncode == ExitCode.APP_BOOT, result.stderr
    lines = [line for line in result.stderr.splitlines() if "Invalid settings" in line]
    assert len(lines) == 1, result.stderr
    assert "posts_service: Invalid settings (2): DEBUG: " in lines[0] and "DATABASE_URL: " in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stderr.count("Booting worker") == 1, result.stderr


def test_errors_never_echo_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "staging-with-hunter2")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "ENVIRONMENT: Input should be 'development', 'test' or 'production'" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://posts:hunter2@db/posts")
    settings = Settings()
    assert "hunter2" not in repr(settings) + str(settings) + settings.model_dump_json()
    assert settings.database_url_value == "postgresql+asyncpg://posts:hunter2@db/posts"


def test_sqlite_file_is_the_default_outside_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE)  # .env is read from the working directory; example/ has none
    assert load_settings().database_url_value == "sqlite+aiosqlite:///./posts.db"


def test_dotenv_in_the_working_directory_is_read_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+asyncpg://u:s3cret-pw@h/db"
    (tmp_path / ".env").write_text(f"ENVIRONMENT=production\nDATABASE_URL={url}\nDATABASE_POOL_SIZE=7\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()  # production without DATABASE_URL would fail: the .env supplies it
    assert (settings.environment, settings.database_url_value, settings.database_pool_size) == ("production", url, 7)
    assert "s3cret-pw" not in repr(settings) + str(settings) + settings.model_dump_json()

    monkeypatch.setenv("DATABASE_POOL_SIZE", "9")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:other-pw@env-host/db")
    settings = load_settings()
    assert settings.database_pool_size == 9
    assert settings.database_url_value == "postgresql+asyncpg://u:other-pw@env-host/db"
    assert settings.environment == "production"  # still from .env
