"""fastlaunch.probes and fastlaunch.offline_docs on the oldest pins fastlaunch supports (FastAPI 0.88,
Starlette 0.22, pydantic 1.10), in a venv of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import ASSETS, IN_CI, ROOT

SRC = ROOT / "src"


def test_probes_and_offline_docs_on_fastapi_088(tmp_path_factory: pytest.TempPathFactory) -> None:
    venv = tmp_path_factory.mktemp("oldpins") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "fastapi==0.88.0", "pydantic<2", "httpx<0.28"], capture_output=True, text=True, timeout=600, check=False
    )
    if installed.returncode != 0 and not IN_CI:
        pytest.skip(f"cannot install the old pins from the package index: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr
    # fastlaunch is imported from src/, its docs_assets/ folder included: no package beyond the old pins.
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(ASSETS / "oldpins" / "check_helpers.py")],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen.pop("versions")[:2] == ["0.88.0", "0.22.0"]
    for app in ("FastAPI", "Starlette"):
        assert seen.pop(f"{app} /readyz") == 503
        for path in ("/healthz", "/docs", "/redoc", "/_fastlaunch/docs/redoc.standalone.js"):
            assert seen.pop(f"{app} {path}") == 200
    assert seen == {}
