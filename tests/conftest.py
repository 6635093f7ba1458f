from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pg import PostgresCluster  # noqa: E402 - needs the sys.path entry above
from support import IN_CI  # noqa: E402

from fastlaunch.core.secret_files import file_variable
from fastlaunch.core.settings import SETTINGS
from fastlaunch.launcher import metrics


# Variables that would leak from a developer's shell into tests, each list read from where it is declared: every
# setting's (and a secret's *_FILE) from the table, the example service's (its pydantic-settings fields), and the
# one Prometheus' client reads.
def _example_settings() -> set[str]:
    if importlib.util.find_spec("posts_service") is None:  # an environment without the example runs none of its tests
        return set()
    from posts_service.config import Settings

    return {field.upper() for field in Settings.model_fields}


_LEAKY = sorted(
    {setting.env for setting in SETTINGS if setting.env}
    | {file_variable(setting.env) for setting in SETTINGS if setting.env and setting.secret}
    | _example_settings()
    | {metrics.ENV}
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    saved_path = list(sys.path)
    cwd = os.getcwd()
    yield
    sys.path[:] = saved_path
    os.chdir(cwd)


def pytest_configure(config: pytest.Config) -> None:
    # CI must run every test: a FASTLAUNCH_SKIP_CONTAINERS left in its environment would skip them silently.
    if os.environ.get("FASTLAUNCH_SKIP_CONTAINERS") and IN_CI:
        raise pytest.UsageError(
            "FASTLAUNCH_SKIP_CONTAINERS is set in CI: the container tests must run there; unset it."
        )


def pytest_report_header(config: pytest.Config) -> str:
    """The server releases the run tests against (the compatibility suite runs at both ends of the range)."""
    from importlib.metadata import version

    return "servers: " + ", ".join(f"{p} {version(p)}" for p in ("gunicorn", "uvicorn", "uvicorn-worker"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FASTLAUNCH_SKIP_CONTAINERS"):
        skip = pytest.mark.skip(reason="FASTLAUNCH_SKIP_CONTAINERS is set (make test-quick)")
        for item in items:
            if "container" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One running cluster for the session; tests take a fresh database from it (``pg_database``)."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_database(postgres: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """DATABASE_URL of a new, empty database for this test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return postgres.create_database(f"{name}_{os.getpid()}")


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, initialised but not started: for tests that stop and start it."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.remove()
