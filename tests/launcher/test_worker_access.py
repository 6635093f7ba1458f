"""Workers under an unprivileged WORKER_USER denied a file: an app they cannot read is refused before anything
starts, and a boot that fails on a file they may not write ends with a message naming the user, the path and the
two fixes (exit code 11), not with "Could not import module" or a bare "worker failed to boot".

These start fastlaunch as root with WORKER_USER=nobody; the apps import nothing a worker would have to read from
the interpreter's own directory (which may be private to root here)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FASTLAUNCH, free_port, run_cli, running

from fastlaunch.core import denied
from fastlaunch.core.channel import heard_denied, open_denied_pipe, tell_denied
from fastlaunch.core.exceptions import ExitCode

RAW_APP = "async def app(scope, receive, send):\n    pass\n"
SERVING_APP = """async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
"""


@pytest.fixture
def project() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path sits under a root-only one)."""
    if os.geteuid() != 0:
        pytest.skip("WORKER_USER switches users only when fastlaunch starts as root")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("needs the user nobody")
    path = Path(tempfile.mkdtemp(prefix="fastlaunch-access-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_as_nobody(project: Path) -> tuple[int, str]:
    env = {"WORKER_USER": "nobody", "HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": "2"}
    result = run_cli(["run"], cwd=project, env=env)
    return result.returncode, result.stderr


def test_an_app_directory_the_worker_user_cannot_read_is_refused_before_anything_starts(project: Path) -> None:
    (project / "main.py").write_text(RAW_APP)
    project.chmod(0o700)
    code, err = run_as_nobody(project)
    assert code == ExitCode.WORKER_ACCESS, err
    assert f"WORKER_USER=nobody (uid 65534), which was denied '{project}' reading the app's module main" in err
    assert f"chmod -R a+rX {project}" in err and "WORKER_USER=root" in err
    assert "Could not import module" not in err and "Starting gunicorn" not in err and "Traceback" not in err


def test_a_module_file_the_worker_user_cannot_read_is_named(project: Path) -> None:
    (project / "main.py").write_text(RAW_APP)
    (project / "main.py").chmod(0o600)
    code, err = run_as_nobody(project)
    assert code == ExitCode.WORKER_ACCESS, err
    assert f"which was denied '{project / 'main.py'}'" in err


def test_a_boot_failing_on_a_directory_it_may_not_write_names_user_path_and_fixes(project: Path) -> None:
    (project / "main.py").write_text(f"import os\n\nos.makedirs('logs', exist_ok=True)\n\n\n{RAW_APP}")
    code, err = run_as_nobody(project)
    assert code == ExitCode.WORKER_ACCESS, err
    last = err[err.index("Error: ") :]
    assert f"WORKER_USER=nobody (uid 65534), which was denied '{project / 'logs'}'" in last
    assert f"chown nobody:nogroup {project}/data" in last and "WORKER_USER=root" in last
    # The app's traceback is still shown once, above; the other worker never started.
    assert err.count("PermissionError: [Errno 13] Permission denied: 'logs'") == 1
    assert err.count("Booting worker") == 1


def test_the_same_failure_as_root_is_the_app_s_own(project: Path) -> None:
    """Without WORKER_USER nothing is blamed on a user: the app raised, exit code 3."""
    (project / "main.py").write_text(f"raise PermissionError(13, 'Permission denied', 'x')\n{RAW_APP}")
    result = run_cli(["run"], cwd=project, env={"HOST": "127.0.0.1", "PORT": str(free_port())})
    assert result.returncode == ExitCode.APP_BOOT, result.stderr
    assert "WORKER_USER" not in result.stderr


def test_worker_user_root_keeps_the_workers_root_and_says_so_once(project: Path) -> None:
    """The drop-in image's default: the original image's behaviour, with the unprivileged setting one line away."""
    (project / "main.py").write_text("open('database.db', 'w').close()\n\n\n" + SERVING_APP)
    port = free_port()
    env = {"WORKER_USER": "root", "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"}
    log = project / "server.log"
    with running([FASTLAUNCH, "run"], cwd=project, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/"):
        pass
    text = log.read_text()
    assert text.count("Workers run as root (WORKER_USER=root), as in the tiangolo images: set WORKER_USER=app") == 1
    assert (project / "database.db").stat().st_uid == 0


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("PermissionError: [Errno 13] Permission denied: 'logs/app.log'", "{cwd}/logs/app.log"),
        ("PermissionError: [Errno 13] Permission denied: '/data/x.db'", "/data/x.db"),
        ("PermissionError: [Errno 1] Operation not permitted: '/app/x'", "/app/x"),
        # SQLite names no path; the working directory is named only when this process cannot write it (a worker
        # switched to WORKER_USER; this test process can).
        ("sqlite3.OperationalError: unable to open database file", ""),
        ("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) attempt to write a readonly database", ""),
        ("OSError: [Errno 13] EACCES", ""),
        ("RuntimeError: boom", None),
        ("ModuleNotFoundError: No module named 'x'", None),
    ],
)
def test_what_counts_as_denied(text: str, found: str | None, tmp_path: Path) -> None:
    expected = found.format(cwd=tmp_path) if found else found
    assert denied.denied_path(f"Traceback (most recent call last):\n  ...\n{text}", str(tmp_path)) == expected


def test_the_pipe_carries_one_line_and_never_blocks_either_side() -> None:
    read, write = open_denied_pipe()
    try:
        assert heard_denied(read) is None  # nothing reported: no claim about a denied file
        tell_denied(write, "/app/\x1b[31mred\nsecond line")
        assert heard_denied(read) == "/app/[31mred second line"
        for _ in range(100):  # a worker filling the pipe: later reports are dropped, nobody waits
            tell_denied(write, "x" * 4000)
        assert heard_denied(read) == "x" * 1000
    finally:
        os.close(read)
        os.close(write)
    tell_denied(None, "/app")  # a worker with no pipe (workers not switched): nothing to tell
