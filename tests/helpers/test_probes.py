from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from fastlaunch.probes import Probes


def get(app: object, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(go())


async def ok() -> None:
    return None


async def broken() -> None:
    raise ConnectionRefusedError("postgresql://user:hunter2@db/app refused")


async def slow() -> None:
    await asyncio.sleep(30)


async def says_no() -> bool:
    return False


def test_ready_when_every_check_passes() -> None:
    app = Starlette()
    probes = Probes()
    probes.add_check("database", ok)
    probes.install(app)
    response = get(app, "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert get(app, "/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("check", "reason"),
    [(broken, "failed: ConnectionRefusedError"), (slow, "timed out after 0.2s"), (says_no, "failed")],
)
def test_a_failing_check_gives_503_with_its_name(check: object, reason: str) -> None:
    app = FastAPI()
    probes = Probes(timeout=0.2)
    probes.add_check("cache", ok)
    probes.add_check("database", check)  # type: ignore[arg-type]
    probes.install(app)
    response = get(app, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"] == {"cache": "ok", "database": reason}
    assert "hunter2" not in response.text  # exception messages may carry a DSN: only the type is shown
    assert get(app, "/healthz").status_code == 200  # liveness does not depend on the checks


def test_each_check_has_its_own_timeout() -> None:
    app = Starlette()
    probes = Probes(timeout=0.1)

    @probes.check("slow-but-allowed", timeout=5)
    async def slowish() -> None:
        await asyncio.sleep(0.3)

    probes.install(app)
    assert get(app, "/readyz").status_code == 200


def test_probes_stay_out_of_the_openapi_schema() -> None:
    app = FastAPI()
    Probes().install(app)
    assert get(app, "/healthz").status_code == 200
    assert get(app, "/readyz").status_code == 200  # no checks: ready
    assert "/healthz" not in get(app, "/openapi.json").json()["paths"]


def test_check_names_are_unique() -> None:
    probes = Probes()
    probes.add_check("db", ok)
    with pytest.raises(ValueError, match="'db' is already registered"):
        probes.add_check("db", ok)
