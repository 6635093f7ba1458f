from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import PASSWORD, PostgresCluster
from support import free_port, run_cli

from fastlaunch.core.exceptions import ConfigError, DatabaseError
from fastlaunch.core.settings import Settings, load_settings
from fastlaunch.prestart import database
from fastlaunch.prestart.database import DatabaseURL, wait_for_database


def settings(url: str, timeout: int = 2) -> Settings:
    return load_settings(environ={"DATABASE_URL": url, "DB_WAIT_TIMEOUT": str(timeout)})


@pytest.fixture
def messages() -> Iterator[list[str]]:
    """Lines the launcher logs (its logger may not propagate to the root once configured)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("fastlaunch")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def mute_listener() -> Iterator[int]:
    """A TCP port that accepts connections and closes them at once: not a database."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    server.close()


def test_urls_are_shown_without_their_password() -> None:
    url = DatabaseURL.parse("postgresql+asyncpg://app:p%40ss-word@db.internal:6543/posts")
    assert url.redacted == "postgresql+asyncpg://app:***@db.internal:6543/posts"
    assert (url.host, url.port, url.is_postgres) == ("db.internal", 6543, True)
    assert url.hide("login as app with p@ss-word failed") == "login as app with *** failed"
    assert DatabaseURL.parse("postgresql://db/x").port == 5432
    with pytest.raises(ConfigError) as info:
        DatabaseURL.parse("postgresql://u:secret-pw@host:notaport/db")
    assert "secret-pw" not in str(info.value)


def test_gives_up_after_the_budget_with_one_clear_error(messages: list[str]) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DatabaseError) as info:
        wait_for_database(settings(f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:{port}/app", timeout=1))
    error = str(info.value)
    assert f"postgresql+asyncpg://app:***@127.0.0.1:{port}/app not reachable within DB_WAIT_TIMEOUT=1s" in error
    assert "ConnectionRefusedError" in error
    assert "\n" not in error
    attempts = [m for m in messages if m.startswith("Waiting for database")]
    assert len(attempts) >= 2
    assert all("app:***@" in m for m in attempts)
    assert PASSWORD not in error + "".join(messages)
    assert info.value.exit_code == 6


class FakeTime:
    """A clock that only moves when slept on, or when an attempt spends time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("attempt_cost", "sleeps", "timeouts"),
    [
        # Doubling from 0.25 s, capped at 5 s; the last pause is cut to what is left of the 20 s budget.
        (0.0, [0.25, 0.5, 1, 2, 4, 5, 5, 2.25], [5, 5, 5, 5, 5, 5, 5, 2.25, 0.5]),
        # Time spent in attempts counts against the budget too.
        (1.5, [0.25, 0.5, 1, 2, 4, 3.25], [5, 5, 5, 5, 5, 4.75, 0.5]),
    ],
)
def test_backs_off_exponentially_within_the_budget(
    monkeypatch: pytest.MonkeyPatch,
    messages: list[str],
    attempt_cost: float,
    sleeps: list[float],
    timeouts: list[float],
) -> None:
    fake = FakeTime()
    started = fake.now
    given: list[float] = []  # each attempt's own timeout

    def refuse(url: DatabaseURL, timeout: float) -> None:
        given.append(timeout)
        fake.now += attempt_cost
        raise OSError(f"connection to {url.raw} refused")  # drivers may echo the URL, password included

    monkeypatch.setattr(database, "attempt", refuse)
    url = f"postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/app"
    with pytest.raises(DatabaseError) as info:
        wait_for_database(settings(url, timeout=20), sleep=fake.sleep, clock=fake.clock)

    assert fake.sleeps == sleeps
    assert sum(fake.sleeps) + attempt_cost * (len(given) - 1) == 20  # the last attempt starts at the deadline
    assert given == timeouts
    attempts = [m for m in messages if m.startswith("Waiting for database")]
    assert len(attempts) == len(sleeps)
    shown = "postgresql+asyncpg://app:***@db.internal:5432/app"
    for number, line in enumerate(attempts, start=1):
        assert line.startswith(f"Waiting for database {shown}: attempt {number} failed (OSError: connection to {shown}")
    error = str(info.value)
    assert "not reachable within DB_WAIT_TIMEOUT=20s" in error
    assert f"({len(given)} attempts; last: OSError: connection to {shown} refused)" in error
    assert PASSWORD not in error + "".join(messages)
    assert info.value.exit_code == 6
    assert fake.now - started == 20 + attempt_cost


def test_an_open_port_is_not_enough(mute_listener: int, messages: list[str]) -> None:
    # TCP connects; the driver's login fails: still waiting, and the driver's error is what is reported.
    with pytest.raises(DatabaseError) as info:
        wait_for_database(settings(f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:{mute_listener}/app", 3))
    assert "ConnectionRefusedError" not in str(info.value)
    assert any("attempt 1 failed" in m for m in messages)


def test_a_missing_driver_fails_at_once(mute_listener: int) -> None:
    with pytest.raises(ConfigError, match=r"driver that is not installed here \(pymysql\)"):
        wait_for_database(settings(f"mysql+pymysql://app:{PASSWORD}@127.0.0.1:{mute_listener}/app", 30))


def test_returns_at_once_when_the_database_answers(postgres: PostgresCluster, messages: list[str]) -> None:
    wait_for_database(settings(postgres.url()))
    assert messages == [
        f"Database postgresql+asyncpg://postgres:***@127.0.0.1:{postgres.port}/postgres is ready (attempt 1)"
    ]


@pytest.mark.parametrize("env", [{}, {"DATABASE_URL": "sqlite+aiosqlite:///./x.db"}, {"DB_WAIT_TIMEOUT": "0"}])
def test_nothing_to_wait_for(env: dict[str, str], messages: list[str]) -> None:
    environ = {"DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/x", **env} if env else {}
    wait_for_database(load_settings(environ=environ))
    assert not any(m.startswith("Waiting") for m in messages)


def test_database_settings_are_validated_together_and_the_url_is_masked(tmp_path: Path) -> None:
    bad = run_cli(["prestart"], cwd=tmp_path, env={"DB_WAIT_TIMEOUT": "soon", "MIGRATE": "maybe"})
    assert bad.returncode == 1
    assert "DB_WAIT_TIMEOUT='soon' (environment): not a whole number" in bad.stderr
    assert "MIGRATE='maybe' (environment): expected one of: auto, on, off" in bad.stderr
    shown = run_cli(["settings"], cwd=tmp_path, env={"DATABASE_URL": f"postgresql://u:{PASSWORD}@db/x"})
    assert shown.returncode == 0, shown.stderr
    assert "DATABASE_URL" in shown.stdout and "********" in shown.stdout
    assert PASSWORD not in shown.stdout


@pytest.mark.parametrize(
    ("query", "loaded"), [("", ["asyncpg"]), ("?prepared_statement_cache_size=0", ["asyncpg", "sqlalchemy"])]
)
def test_asyncpg_urls_are_waited_for_without_sqlalchemy(
    postgres: PostgresCluster, query: str, loaded: list[str]
) -> None:
    # A fresh interpreter: what the wait imported is all that is in sys.modules. URL options are SQLAlchemy's
    # connect arguments, so such a URL still goes through it.
    code = (
        "import sys\n"
        "from fastlaunch.core.settings import load_settings\n"
        "from fastlaunch.prestart.database import wait_for_database\n"
        "wait_for_database(load_settings(environ={'DATABASE_URL': sys.argv[1]}))\n"
        "print(sorted(m for m in ('asyncpg', 'sqlalchemy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, postgres.url() + query], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(loaded)
