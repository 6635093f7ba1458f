"""DATABASE_URL's password never printed, whatever path prints the URL, and only the password masked; a
unix-socket DATABASE_URL really checked. Real ``fastlaunch`` processes throughout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from abuse_kit import APP
from support import FASTLAUNCH, free_port, run_cli

from fastlaunch.core.exceptions import ExitCode
from fastlaunch.core.urls import masked_url, scrubbed

SENTINEL = "S3ntinel-pw"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text((APP / "main.py").read_text())
    return tmp_path


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres:postgres@localhost/postgres", "postgresql://postgres:***@localhost/postgres"),
        ("postgresql://h/db?password=S3cret", "postgresql://h/db?password=***"),
        (
            "postgresql+asyncpg://app:p%40ss@db:5432/app?ssl=require",
            "postgresql+asyncpg://app:***@db:5432/app?ssl=require",
        ),
        (
            "mysql+pymysql://u:1@10.0.0.1/db?charset=utf8&PWD=x",
            "mysql+pymysql://u:***@10.0.0.1/db?charset=utf8&PWD=***",
        ),
        ("mssql+pyodbc://u:pw@dsn", "mssql+pyodbc://u:***@dsn"),
        ("sqlite:///app.db", "sqlite:///app.db"),
    ],
)
def test_only_the_password_is_masked(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_a_drivers_message_keeps_addresses_readable() -> None:
    url = "postgresql://u:1@10.0.0.1/db"
    assert scrubbed("connection to 10.0.0.1 failed for password 1", url) == (
        "connection to 10.0.0.1 failed for password ***"
    )
    assert SENTINEL not in scrubbed(
        f"bad dsn {url.replace(':1@', f':{SENTINEL}@')}", url.replace(":1@", f":{SENTINEL}@")
    )


def test_no_output_path_prints_the_password(project: Path) -> None:
    closed = free_port()  # nothing listens there: the wait fails and says so
    urls = [
        f"postgresql://app:{SENTINEL}@127.0.0.1:{closed}/app",
        f"postgresql://127.0.0.1:{closed}/app?sslmode=disable&password={SENTINEL}",
        f"postgresql://app:{SENTINEL}@127.0.0.1:notaport/app",  # invalid: the error shows the URL
    ]
    outputs: list[str] = []
    for url in urls:
        env = {"DATABASE_URL": url, "DB_WAIT_TIMEOUT": "1", "COLUMNS": "200", "PORT": str(free_port())}
        for args in (["run"], ["prestart"], ["settings"], ["workers"], ["init", "--dry-run"]):
            r = run_cli(args, cwd=project, env=env, timeout=60)
            outputs.append(f"$ {' '.join(args)}\n{r.stdout}{r.stderr}")
    both = "\n".join(outputs)
    assert SENTINEL not in both
    assert "postgresql://app:***@127.0.0.1" in both  # what it connects to stays readable
    assert "password=***" in both


def _prestart_without_sqlalchemy(project: Path, url: str) -> subprocess.CompletedProcess[str]:
    # The launcher's own Python, SQLAlchemy made unimportable: the driver-less path is what is tested.
    code = "import sys; sys.modules['sqlalchemy'] = None; sys.argv = ['fastlaunch', 'prestart']; "
    code += "from fastlaunch.cli.entry import main; main()"
    env = {**os.environ, "DATABASE_URL": url, "DB_WAIT_TIMEOUT": "1"}
    python = str(Path(FASTLAUNCH).parent / "python")
    return subprocess.run(
        [python or sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_unix_socket_url_is_checked(project: Path, tmp_path: Path) -> None:
    sockets = tmp_path / "run"
    sockets.mkdir()
    url = f"postgresql://app:{SENTINEL}@/app?host={sockets}"
    r = _prestart_without_sqlalchemy(project, url)
    assert r.returncode == ExitCode.DATABASE, r.stderr  # it was logged "ready" having checked nothing
    assert "not reachable" in r.stderr and SENTINEL not in r.stderr + r.stdout
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sockets / ".s.PGSQL.5432"))
        server.listen()
        r = _prestart_without_sqlalchemy(project, url)
    assert r.returncode == 0, r.stderr
    assert "is ready" in r.stderr
    r = _prestart_without_sqlalchemy(project, f"postgresql://app:{SENTINEL}@/app")
    assert r.returncode == 0 and "was not checked" in r.stderr and "is ready" not in r.stderr
