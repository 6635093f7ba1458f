"""``pip install .`` into an app's own environment, next to old pins (FastAPI 0.88 + pydantic 1.10) and
current ones: the launcher depends on neither FastAPI nor pydantic."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import ASSETS, FASTLAUNCH, ROOT, free_port, running


@pytest.fixture(scope="module")
def old_pins_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("oldpins") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # A regular (non-editable) install of this checkout, as a user would do it.
    subprocess.run([*pip, str(ROOT), "fastapi==0.88.0", "pydantic==1.10.13", "alembic"], check=True, timeout=600)
    return venv


def test_old_pins_resolve_alongside_fastlaunch(old_pins_venv: Path) -> None:
    out = subprocess.run(
        [
            str(old_pins_venv / "bin/python"),
            "-c",
            "import fastapi, pydantic, starlette, fastlaunch; print(fastapi.__version__, pydantic.VERSION)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["0.88.0", "1.10.13"]
    site = next((old_pins_venv / "lib").glob("python3.*/site-packages"))
    assert not (site / "fastlaunch.egg-link").exists() and (site / "fastlaunch").is_dir()  # not editable


def test_old_pins_app_with_alembic_prestart(old_pins_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ASSETS / "oldpins", project)
    port = free_port()
    # The venv is not activated (as under systemd): prestart.sh must still find the venv's alembic.
    # MIGRATE=off: fastlaunch's own migrate step would otherwise reach head first, leaving the script nothing to do.
    env = {"HOST": "127.0.0.1", "PORT": str(port), "PATH": "/usr/bin:/bin", "MIGRATE": "off"}
    log = tmp_path / "server.log"
    with running(
        [str(old_pins_venv / "bin/fastlaunch"), "run"],
        cwd=project,
        env=env,
        log=log,
        ready_url=f"http://127.0.0.1:{port}/items/1",
    ):
        assert httpx.get(f"http://127.0.0.1:{port}/notes").json() == [{"id": 1, "text": "created by the migration"}]
        item = httpx.get(f"http://127.0.0.1:{port}/items/5", params={"q": "somequery"}).json()
    assert item == {"item_id": 5, "q": "somequery"}
    text = log.read_text()
    assert "Migrating:" not in text and "Migrations are at head" not in text  # fastlaunch did not migrate
    script, upgrade = text.find("Running prestart script"), text.find("Running upgrade  -> 0001")
    assert 0 <= script < upgrade, text  # the script's `alembic upgrade head` applied the revision


@pytest.mark.parametrize("launcher", ["old-pins venv", "current venv"])
def test_docs_example_alone_in_a_folder(launcher: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    shutil.copy(ASSETS / "docsapp/main.py", tmp_path / "main.py")
    binary = FASTLAUNCH
    if launcher == "old-pins venv":
        binary = str(request.getfixturevalue("old_pins_venv") / "bin/fastlaunch")
    port = free_port()
    with running(
        [binary, "run"],
        cwd=tmp_path,
        env={"HOST": "127.0.0.1", "PORT": str(port)},
        log=tmp_path / "server.log",
        ready_url=f"http://127.0.0.1:{port}/",
    ):
        response = httpx.get(f"http://127.0.0.1:{port}/items/5?q=somequery")
    assert response.json() == {"item_id": 5, "q": "somequery"}
