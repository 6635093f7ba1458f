from __future__ import annotations

from pathlib import Path

import pytest
from support import run_cli

from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.settings import BY_NAME, SETTINGS, Settings, load_here, load_settings
from fastlaunch.core.validators import Bind
from fastlaunch.launcher.worker_class import worker_class


def test_defaults_match_the_official_image_except_documented_port() -> None:
    s = load_settings()
    assert (s.host, s.port, s.log_level, s.timeout, s.graceful_timeout, s.keep_alive) == (
        "0.0.0.0",
        8000,
        "info",
        120,
        120,
        5,
    )
    assert s.access_log == "-" and s.error_log == "-"
    assert s.workers_per_core == 1.0 and s.workers is None and s.max_workers is None
    assert str(s.address) == "0.0.0.0:8000"
    assert "8000 instead of 80" in BY_NAME["port"].image


def test_precedence_cli_over_env_over_pyproject_over_default() -> None:
    env = {"PORT": "9001", "LOG_LEVEL": "debug", "TIMEOUT": "30"}
    toml = {"port": 9002, "log_level": "warning", "timeout": 60, "keep_alive": 9}
    s = load_settings(cli={"port": "9000"}, environ=env, pyproject=toml)
    assert (s.port, s.log_level, s.timeout, s.keep_alive, s.graceful_timeout) == (9000, "debug", 30, 9, 120)
    assert [s.source(n).kind for n in ("port", "log_level", "keep_alive", "graceful_timeout")] == [
        "cli",
        "env",
        "pyproject",
        "default",
    ]
    assert s.source("port").where == "--port" and s.source("log_level").where == "LOG_LEVEL"


def test_database_url_from_the_projects_dotenv_between_environment_and_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app (pydantic-settings) reads DATABASE_URL from .env too: prestart must wait for and lock that one.
    url = "postgresql+asyncpg://posts:hunter2@db.internal/posts"
    (tmp_path / ".env").write_text(f"DEBUG=true\nDATABASE_URL={url}\nPORT=9999\n")
    (tmp_path / "pyproject.toml").write_text('[tool.fastlaunch]\ndatabase_url = "sqlite+aiosqlite:///x.db"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    s = load_here()
    assert s.database_url == url
    assert s.source("database_url").describe() == f".env ({tmp_path / '.env'} DATABASE_URL)"
    assert s.port == 8000 and s.source("port").kind == "default", "only what the app shares comes from .env"
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://other@db/other")
    assert load_here().database_url == "postgresql+asyncpg://other@db/other"  # the environment wins
    (tmp_path / ".env").unlink()
    monkeypatch.delenv("DATABASE_URL")
    assert load_here().source("database_url").kind == "pyproject"


def test_an_empty_database_url_in_dotenv_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=\n")  # empty: unset, as in the environment
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert load_here().database_url is None


def test_bind_wins_over_host_and_port() -> None:
    s = load_settings(environ={"BIND": "[::1]:7000", "HOST": "127.0.0.1", "PORT": "1"})
    assert s.address == Bind("tcp", host="::1", port=7000)
    assert str(s.address) == "[::1]:7000"


def test_empty_values_behave_like_the_image() -> None:
    s = load_settings(environ={"WEB_CONCURRENCY": "", "ACCESS_LOG": "", "ERROR_LOG": "-"})
    assert s.workers is None  # empty: unset
    assert s.access_log is None  # empty: access log off
    assert s.error_log == "-"


@pytest.mark.parametrize(
    ("raw", "expected"), [("512M", 512 * 2**20), ("auto", "auto"), ("AUTO", "auto"), ("off", None), ("0", None)]
)
def test_max_worker_memory_takes_a_size_auto_or_off(raw: str, expected: object) -> None:
    assert load_settings(environ={"MAX_WORKER_MEMORY": raw}).max_worker_memory == expected


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"WEB_CONCURRENCY": "abc"}, "WEB_CONCURRENCY='abc' (environment): not a whole number"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY='0' (environment): must be 1 or more"),
        ({"WEB_CONCURRENCY": "-1"}, "WEB_CONCURRENCY='-1' (environment): must be 1 or more"),
        ({"WORKERS_PER_CORE": "x"}, "WORKERS_PER_CORE='x' (environment): not a number"),
        ({"BIND": "nonsense"}, "BIND='nonsense' (environment): expected HOST:PORT"),
        ({"BIND": "127.0.0.1:99999"}, "must be a port number from 1 to 65535"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' (environment): expected one of"),
        ({"WORKER_MEMORY": "lots"}, "WORKER_MEMORY='lots' (environment): expected a size"),
        ({"MAX_WORKER_MEMORY": "big"}, "MAX_WORKER_MEMORY='big' (environment): expected a size"),
        ({"PRELOAD": "maybe"}, "PRELOAD='maybe' (environment): expected one of on/off"),
        ({"HEALTHCHECK_PATH": "health"}, "HEALTHCHECK_PATH='health' (environment): expected a path starting with /"),
        ({"HEALTHCHECK_PATH": "/h?x=1"}, "HEALTHCHECK_PATH='/h?x=1' (environment): expected a path starting with /"),
    ],
)
def test_invalid_values_name_variable_value_and_fix(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env)
    assert fragment in str(info.value)


def test_healthcheck_path_is_a_path_or_none() -> None:
    assert load_settings(environ={"HEALTHCHECK_PATH": "/status"}).healthcheck_path == "/status"
    assert load_settings(environ={"HEALTHCHECK_PATH": ""}).healthcheck_path is None
    assert load_settings(environ={}).healthcheck_path is None


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"WEB_CONCURRENCY": "abc", "PORT": "http", "TIMEOUT": "-5"}, pyproject={"wokers": 2})
    assert len(info.value.problems) == 4
    assert "4 problems" in info.value.message
    assert any("unknown key 'wokers'" in p for p in info.value.problems)


def test_sizes_parse_in_binary_units() -> None:
    assert load_settings(environ={"WORKER_MEMORY": "150M"}).worker_memory == 150 * 2**20
    assert load_settings(environ={"WORKER_MEMORY": "1.5Gi"}).worker_memory == int(1.5 * 2**30)
    assert load_settings(pyproject={"worker_memory": 1000}).worker_memory == 1000


def test_table_and_settings_dataclass_agree() -> None:
    fields = set(Settings.__dataclass_fields__) - {"project_dir", "sources"}
    assert fields == {s.name for s in SETTINGS}
    defaults = load_settings()
    for s in SETTINGS:
        if s.name != "bind":
            assert getattr(defaults, s.name) == s.default, s.name


def test_the_table_is_read_off_the_typed_class() -> None:
    """One declaration: each setting is a field of Settings, whose name, order and default the table takes."""
    import dataclasses

    fields = [f for f in dataclasses.fields(Settings) if f.name not in ("project_dir", "sources")]
    assert [f.name for f in fields] == [s.name for s in SETTINGS]
    assert [f.default for f in fields] == [s.default for s in SETTINGS]
    assert Settings().workers is None and Settings(workers=3).workers == 3  # defaults live on the class


def test_every_cli_setting_is_an_option_of_run(tmp_path: Path) -> None:
    from fastlaunch.cli.run import FLAGS, options

    assert set(options()) | set(FLAGS) == {s.cli for s in SETTINGS if s.cli} | {"--no-prestart", "--help"}
    result = run_cli(["run", "--help"], cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0 and "--workers-per-core" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("uvicorn.workers.UvicornWorker", "fastlaunch.worker.UvicornWorker"),
        ("uvicorn.workers.UvicornH11Worker", "uvicorn_worker.UvicornH11Worker"),
        ("uvicorn_worker.UvicornWorker", "uvicorn_worker.UvicornWorker"),  # a current path is kept as given
    ],
)
def test_the_deprecated_images_worker_class_paths_are_mapped(old: str, new: str) -> None:
    assert worker_class(load_settings(environ={"WORKER_CLASS": old})) == new


def test_unset_worker_class_is_fastlaunchs_worker() -> None:
    assert worker_class(load_settings(environ={})) == "fastlaunch.worker.UvicornWorker"


def test_worker_user_must_exist_here() -> None:
    assert load_settings(environ={"WORKER_USER": "nobody:nogroup"}).worker_user == "nobody:nogroup"
    assert load_settings(environ={"WORKER_USER": "0"}).worker_user == "0"
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"WORKER_USER": "no-such-user-here"})
    assert "WORKER_USER='no-such-user-here' (environment): there is no user 'no-such-user-here' here" in str(info.value)
    assert "useradd --system app" in str(info.value)
