"""``fastlaunch init`` warns when the project pins Gunicorn, Uvicorn or uvicorn-worker outside the releases fastlaunch
supports (pyproject.toml's ranges), in each way real projects pin them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import run_cli

APP = "from fastapi import FastAPI\napp = FastAPI()\n"


@pytest.mark.parametrize(
    ("files", "warned"),
    [
        ({"requirements.txt": "fastapi\ngunicorn==21.2.0\nuvicorn[standard]>=0.25,<0.26\n"}, ["gunicorn", "uvicorn"]),
        (
            {
                "pyproject.toml": '[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\npython = "^3.11"\n'
                'gunicorn = "^21.2.0"\nuvicorn-worker = {version = "~0.1"}\n',
                "poetry.lock": '[[package]]\nname = "fastapi"\nversion = "0.110.0"\n',
            },
            ["gunicorn", "uvicorn-worker"],
        ),
        (
            {
                "pyproject.toml": '[project]\nname = "x"\ndependencies = ["fastapi", "uvicorn~=0.24.0"]\n',
                "uv.lock": 'version = 1\n[[package]]\nname = "gunicorn"\nversion = "21.2.0"\n',
            },
            ["uvicorn", "gunicorn"],
        ),
        # Within the range, or unpinned: nothing to say.
        ({"requirements.txt": "fastapi\ngunicorn>=22\nuvicorn[standard]\nuvicorn-worker==0.4.0\n"}, []),
    ],
)
def test_init_warns_of_a_server_pinned_outside_the_range(
    files: dict[str, str], warned: list[str], tmp_path: Path
) -> None:
    (tmp_path / "main.py").write_text(APP)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_cli(["init", "docker", "--dry-run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert [re.findall(r" pins ([a-z-]+)", line)[0] for line in lines] == warned, result.stderr
    for line in lines:
        assert "outside the releases fastlaunch supports" in line and "docs: Install" in line
