"""Shared by the hung/slow/rolling tests: the fixture app (tests/assets/hung) served by a real `fastlaunch run`."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

from support import ASSETS, FASTLAUNCH, running


def hung_app(tmp_path: Path, name: str = "app") -> Path:
    app_dir = tmp_path / name
    app_dir.mkdir()
    shutil.copy(ASSETS / "hung/main.py", app_dir / "main.py")
    (app_dir / "marks").mkdir()
    return app_dir


def serve(
    app_dir: Path, port: int, *, ready_path: str = "/", **env: str
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return running(
        [FASTLAUNCH, "run"],
        cwd=app_dir,
        env={"HOST": "127.0.0.1", "PORT": str(port), "MARKS_DIR": str(app_dir / "marks"), **env},
        log=app_dir / "server.log",
        ready_url=f"http://127.0.0.1:{port}/",
    )
