"""``fastlaunch prestart``: the PRE_START_PATH script is executed (shebang honoured, output streamed), after
the wait and the migration, and its failure decides the exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
from posts import EXAMPLE
from support import FASTLAUNCH, free_port, running, wait_for_log

from fastlaunch.core.exceptions import ExitCode

# Python that bash cannot run: the image sourced prestart.sh, so a python3 shebang never took effect.
PYTHON_SCRIPT = """\
#!/usr/bin/env python3
import os
import sys
import time

squares = [n * n for n in range(4)]
print(f"prestart in python: {squares}", flush=True)
# Wait (bounded) until the test has seen the line above while fastlaunch is still running.
go = os.path.join(os.getcwd(), "go")
for _ in range(300):
    if os.path.exists(go):
        break
    time.sleep(0.1)
else:
    sys.exit(3)
print("prestart in python: done", flush=True)
"""


def prestart(project: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``fastlaunch prestart`` with stdout and stderr in one stream, so the order of lines is kept."""
    return subprocess.run(
        [FASTLAUNCH, "prestart"],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


def in_order(text: str, *fragments: str) -> None:
    positions = [text.find(f) for f in fragments]
    assert -1 not in positions, f"missing {fragments[positions.index(-1)]!r} in:\n{text}"
    assert positions == sorted(positions), f"expected in order {fragments} in:\n{text}"


@pytest.mark.parametrize("executable", [True, False], ids=["chmod +x", "not executable"])
def test_python_shebang_script_runs_and_its_output_streams(tmp_path: Path, executable: bool) -> None:
    script = tmp_path / "prestart.sh"
    script.write_text(PYTHON_SCRIPT)
    script.chmod(0o755 if executable else 0o644)
    sourced = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert sourced.returncode != 0  # what the image's `. prestart.sh` amounted to

    proc = subprocess.Popen([FASTLAUNCH, "prestart"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        # The line arrives while the script (and fastlaunch) still runs: streamed, not collected at the end.
        assert proc.stdout.readline() == "prestart in python: [0, 1, 4, 9]\n"
        assert proc.poll() is None
        (tmp_path / "go").touch()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert rest == "prestart in python: done\n"


def test_order_is_wait_then_migrate_then_script(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE / "alembic", project / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "alembic.ini", project)
    database = tmp_path / "posts.db"
    # Fails unless the migration has already created the schema when the script runs.
    (project / "prestart.sh").write_text(
        textwrap.dedent(
            """\
            #!/usr/bin/env python3
            import os, sqlite3, sys

            path = os.environ["DATABASE_URL"].split(":///", 1)[1]
            if not os.path.exists(path):
                sys.exit("prestart: no database file yet")
            with sqlite3.connect(path) as db:
                try:
                    (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
                except sqlite3.OperationalError as exc:
                    sys.exit(f"prestart: not migrated yet ({exc})")
            print(f"prestart: schema at {version}", flush=True)
            """
        )
    )
    # At debug level the (for SQLite, empty) wait step says so, which shows where it ran.
    result = prestart(project, {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stdout
    in_order(
        result.stdout,
        "DATABASE_URL is SQLite: a local file, nothing to wait for",
        "Migrating: alembic upgrade head",
        "Running upgrade  -> 0001",
        "Migrations are at head",
        f"Running prestart script {project / 'prestart.sh'}",
        "prestart: schema at 0001",
    )


def test_script_killed_by_a_signal_exits_128_plus_the_signal(tmp_path: Path) -> None:
    (tmp_path / "prestart.sh").write_text("#!/bin/sh\necho before the signal\nkill -TERM $$\necho after the signal\n")
    result = prestart(tmp_path)
    assert result.returncode == 128 + 15
    assert result.returncode not in {int(code) for code in ExitCode}  # not mistaken for one of fastlaunch's own
    assert "before the signal" in result.stdout and "after the signal" not in result.stdout
    assert "was killed by signal SIGTERM (15)" in result.stdout
    assert "exit code 143: 128 + signal number" in result.stdout
    assert "Traceback" not in result.stdout


ENV_APP = """\
import json
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({name: os.environ.get(name) for name in ("GREETING", "DROPPED", "WEB_CONCURRENCY")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
"""


def test_a_shebang_less_script_is_sourced_and_what_it_exports_reaches_the_app(tmp_path: Path) -> None:
    """The deprecated image sourced prestart.sh into its start script, so its exports reached Gunicorn and the
    app; fastlaunch sources such a script in a shell of its own and carries the exports over."""
    (tmp_path / "main.py").write_text(ENV_APP)
    (tmp_path / "prestart.sh").write_text(
        'echo "prestart: sourced"\n'
        'GREETING="hello from prestart.sh"\nexport GREETING\n'
        "unset DROPPED\n"
        "export WEB_CONCURRENCY=1\n"
        "exit 0\n"  # ends the sourcing shell: its exports are still written on the way out
        'echo "prestart: never here"\n'
    )
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "DROPPED": "set before", "WEB_CONCURRENCY": "2"}
    log = tmp_path / "log"
    with running([FASTLAUNCH, "run"], cwd=tmp_path, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/"):
        body = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        text = wait_for_log(log, "Worker plan: ")
    assert body == {"GREETING": "hello from prestart.sh", "DROPPED": None, "WEB_CONCURRENCY": "1"}
    assert "prestart: sourced" in text and "prestart: never here" not in text
    assert "exported DROPPED, GREETING, WEB_CONCURRENCY: passed on to the server and the app" in text
    # fastlaunch's own settings were read before the script ran: it says so instead of half-applying them.
    assert "WEB_CONCURRENCY from the prestart script reach the app, but fastlaunch read its own settings" in text
    assert "Worker plan: 2 workers" in text


def test_a_sourced_script_stops_at_its_first_failing_command(tmp_path: Path) -> None:
    """As under the image's `set -e`: a failed step (a migration, say) stops the start."""
    (tmp_path / "prestart.sh").write_text("echo one\nfalse\necho two\n")
    result = prestart(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "one" in result.stdout and "two" not in result.stdout
    assert "exited with code 1; the server was not started" in result.stdout


def test_a_project_without_a_database_or_migrations_starts_no_database_step(tmp_path: Path) -> None:
    # Decided from the settings and alembic.ini alone: no child process, none of its imports (about 70 ms of
    # every start). The steps' own checks, which log at debug level, would otherwise run (in the child).
    for url in ("", f"sqlite:///{tmp_path / 'app.db'}"):
        result = prestart(tmp_path, {"LOG_LEVEL": "debug", "DATABASE_URL": url})
        assert result.returncode == 0, result.stdout
        assert "no database steps" in result.stdout, result.stdout
        child_lines = ("not waiting for a database", "nothing to wait for", "No alembic.ini")
        assert not any(line in result.stdout for line in child_lines), result.stdout
