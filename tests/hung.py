"""Shared by the hung/slow/rolling tests: the fixture app (tests/assets/hung) served by a real `fastlaunch run`."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

from support import ASSETS
from support import serve as serve_app


def hung_app(tmp_path: Path, name: str = "app") -> Path:
    app_dir = tmp_path / name
    app_dir.mkdir()
    shutil.copy(ASSETS / "hung/main.py", app_dir / "main.py")
    (app_dir / "marks").mkdir()
    return app_dir


def serve(app_dir: Path, port: int, **env: str) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """The hung app, leaving its marks in app_dir/marks."""
    return serve_app(app_dir, port, env={"MARKS_DIR": str(app_dir / "marks"), **env})
