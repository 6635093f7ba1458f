"""The `*_FILE` convention: a secret setting read from the file its `*_FILE` variable names (Docker/Swarm secrets),
then handed to the prestart steps and the app under its plain name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from support import FASTLAUNCH, free_port, run_cli, running

from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.secret_files import export_secret_files
from fastlaunch.core.settings import SETTINGS, load_settings

URL = "postgresql://app:s3cret-pw@db:5432/app"


def secret(tmp_path: Path, text: str, name: str = "database-url") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_database_url_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    path = secret(tmp_path, URL + "\n")
    s = load_settings(environ={"DATABASE_URL_FILE": str(path)})
    assert s.database_url == URL
    assert s.source("database_url").describe() == f"environment (DATABASE_URL_FILE {path})"
    assert "s3cret-pw" not in s.display("database_url")


def test_every_secret_setting_takes_a_file() -> None:
    secrets = [s for s in SETTINGS if s.secret]
    assert secrets and all(s.env for s in secrets)


def test_the_file_ranks_as_the_environment_does(tmp_path: Path) -> None:
    path = secret(tmp_path, URL)
    environ = {"DATABASE_URL_FILE": str(path)}
    below = load_settings(environ=environ, dotenv={"DATABASE_URL": "sqlite:///dev.db"}, pyproject={})
    assert below.database_url == URL  # above .env and [tool.fastlaunch]
    above = load_settings(cli={"database_url": "sqlite:///cli.db"}, environ=environ)
    assert above.database_url == "sqlite:///cli.db"


@pytest.mark.parametrize(
    ("case", "expected"), [("missing", "no such file"), ("directory", "is a directory"), ("binary", "not UTF-8")]
)
def test_an_unreadable_file_is_one_readable_problem(tmp_path: Path, case: str, expected: str) -> None:
    path = tmp_path / case
    if case == "directory":
        path.mkdir()
    elif case == "binary":
        path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"DATABASE_URL_FILE": str(path)})
    (problem,) = caught.value.problems
    assert problem.startswith(f"DATABASE_URL_FILE={path} (environment): ") and expected in problem
    assert "mount the secret" in problem


def test_both_the_value_and_the_file_is_refused(tmp_path: Path) -> None:
    path = secret(tmp_path, URL)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"DATABASE_URL_FILE": str(path), "DATABASE_URL": "sqlite:///x.db"})
    (problem,) = caught.value.problems
    assert "DATABASE_URL and DATABASE_URL_FILE are both set" in problem
    assert "s3cret" not in problem


def test_export_sets_the_plain_name_and_drops_the_file_variable(tmp_path: Path) -> None:
    path = secret(tmp_path, URL)
    environ = {"DATABASE_URL_FILE": str(path), "OTHER": "1"}
    s = load_settings(environ=environ)
    assert export_secret_files(s, environ) == ["DATABASE_URL"]
    assert environ == {"DATABASE_URL": URL, "OTHER": "1"}
    assert load_settings(environ=environ).database_url == URL  # a second load sees one source
    plain = {"DATABASE_URL": URL}
    assert export_secret_files(load_settings(environ=plain), plain) == [] and plain == {"DATABASE_URL": URL}


APP = """
import hashlib, json, os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    url = os.environ.get("DATABASE_URL", "")
    body = {"sha": hashlib.sha256(url.encode()).hexdigest(), "file_var": "DATABASE_URL_FILE" in os.environ,
            "prestart": open("prestart-saw").read().strip()}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
"""


def test_run_hands_the_secret_to_prestart_and_the_app_and_never_logs_it(tmp_path: Path) -> None:
    project = tmp_path / "svc"
    project.mkdir()
    (project / "main.py").write_text(APP)
    # Without a shebang prestart.sh is sourced by sh: it sees what the launcher's environment holds.
    (project / "prestart.sh").write_text('echo "${DATABASE_URL:+set}${DATABASE_URL_FILE:+file}" > prestart-saw\n')
    url = "postgresql://app:s3cret@db.invalid/app"  # DB_WAIT_TIMEOUT=0 and no alembic.ini: no database steps
    path = secret(tmp_path, url + "\n")
    port = free_port()
    env = {"DATABASE_URL_FILE": str(path), "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    env["DB_WAIT_TIMEOUT"] = "0"
    env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, **env}
    log = tmp_path / "run.log"
    ready = f"http://127.0.0.1:{port}/"
    with running([FASTLAUNCH, "run", "--app", "main:app"], cwd=project, env=env, log=log, ready_url=ready):
        seen = httpx.get(ready, timeout=5).json()
    assert seen == {"sha": hashlib.sha256(url.encode()).hexdigest(), "file_var": False, "prestart": "set"}
    assert "s3cret" not in log.read_text()

    shown = run_cli(["settings"], cwd=project, env={**env, "COLUMNS": "300"})
    assert shown.returncode == 0 and "DATABASE_URL_FILE" in shown.stdout and "s3cret" not in shown.stdout


def test_prestart_command_hands_the_secret_to_the_script(tmp_path: Path) -> None:
    # `fastlaunch prestart` is what a Nomad prestart task or a migration job runs.
    project = tmp_path / "svc"
    project.mkdir()
    (project / "prestart.sh").write_text('echo "${DATABASE_URL:+set}${DATABASE_URL_FILE:+file}" > prestart-saw\n')
    path = secret(tmp_path, "postgresql://app:s3cret@db.invalid/app\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = run_cli(["prestart"], cwd=project, env={**env, "DATABASE_URL_FILE": str(path), "DB_WAIT_TIMEOUT": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "prestart-saw").read_text().strip() == "set"
    assert "s3cret" not in done.stdout + done.stderr


def test_a_missing_secret_file_stops_run_with_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    done = run_cli(["run", "--app", "main:app"], cwd=tmp_path, env={"DATABASE_URL_FILE": str(missing)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"DATABASE_URL_FILE={missing} (environment): no such file" in done.stderr
    assert "Traceback" not in done.stderr
