"""The privilege boundary: a compromised app (tests/assets/hostile) plants links, FIFOs, directories, huge files,
bad names and bad contents everywhere it can reach, at import and on every request, while workers are recycled
(MAX_REQUESTS, MAX_WORKER_MEMORY=auto under a memory limit) and METRICS=on. Whatever it does, the master never
writes through what it planted (a root-only canary stays as it was), stays up, and stops on SIGTERM within
the graceful timeout."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cgroup_kit
import httpx
import pytest
from cgroup_kit import MemoryGroup
from support import ASSETS, FASTLAUNCH, free_port, running
from worker_user_kit import WORKER_USER, as_root_with_worker_user, require_root

memory_group = cgroup_kit.memory_group
GRACEFUL = 5
ATTACKS = 30
ATTACK_SECONDS = 20


@dataclass
class Ground:
    app: Path  # the app's directory, readable by WORKER_USER
    open: Path  # a directory anyone can write
    canary: Path  # root-only: the app's links point at it
    stage: Path  # for worker_user_kit's mount
    tag: str

    def state(self) -> tuple[object, ...]:
        info = self.canary.stat()
        digest = hashlib.sha256(self.canary.read_bytes()).hexdigest()
        listing = sorted(p.name for p in self.canary.parent.iterdir())
        return digest, info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns, info.st_ctime_ns, listing


@pytest.fixture
def ground() -> Iterator[Ground]:
    require_root()
    base = Path(tempfile.mkdtemp(prefix="fastlaunch-abuse-", dir="/var/tmp"))
    tag = f"hostile-{uuid.uuid4().hex[:8]}"
    try:
        base.chmod(0o755)
        (base / "app").mkdir(mode=0o755)
        shutil.copy(ASSETS / "hostile" / "main.py", base / "app" / "main.py")
        (base / "open").mkdir()
        (base / "open").chmod(0o1777)
        secret = base / "secret"
        secret.mkdir(mode=0o700)
        canary = secret / "canary"
        canary.write_text("root-only: nothing of fastlaunch may write here\n")
        canary.chmod(0o600)
        (base / "stage").mkdir()
        yield Ground(base / "app", base / "open", canary, base / "stage", tag)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for shared in ("/dev/shm", tempfile.gettempdir()):
            for planted in Path(shared).glob(f"{tag}-*"):
                with contextlib.suppress(OSError):
                    shutil.rmtree(planted) if planted.is_dir() and not planted.is_symlink() else planted.unlink()


def attack(port: int) -> int:
    """Requests that make every worker plant again, some of them landing while workers are replaced. The app
    kills its own workers, so the master's restart backoff soon spaces the replacements out: the loop is bounded
    in time as well as in count."""
    answered = 0
    deadline = time.monotonic() + ATTACK_SECONDS
    for i in range(ATTACKS):
        if time.monotonic() > deadline:
            break
        with contextlib.suppress(httpx.HTTPError):
            path = "/attack" if i % 3 else "/"
            response = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Connection": "close"}, timeout=5)
            answered += response.status_code == 200
    return answered


@pytest.mark.parametrize(
    ("worker_user", "preload"),
    [(WORKER_USER, False), (WORKER_USER, True), (None, False)],
    ids=["worker-user", "worker-user-preload", "root-workers"],
)
def test_a_hostile_app_cannot_reach_past_the_boundary(
    ground: Ground, memory_group: MemoryGroup, worker_user: str | None, preload: bool
) -> None:
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "METRICS": "on",
        "MAX_WORKER_MEMORY": "auto",
        "MAX_REQUESTS": "4",
        "GRACEFUL_TIMEOUT": str(GRACEFUL),
        "PRELOAD": "on" if preload else "off",
        "HOSTILE_CANARY": str(ground.canary),
        "HOSTILE_DIRS": str(ground.open),
        "HOSTILE_TAG": ground.tag,
        **({"WORKER_USER": worker_user} if worker_user else {}),
    }
    before = ground.state()
    log = ground.open.parent / "server.log"
    command = memory_group.enter(*as_root_with_worker_user([FASTLAUNCH, "run"], ground.stage))
    with running(command, cwd=ground.app, env=env, log=log, ready_url=f"http://127.0.0.1:{port}/") as proc:
        answered = attack(port)
        assert proc.poll() is None, log.read_text(errors="replace")
        proc.send_signal(signal.SIGTERM)  # replacements may be waiting out the backoff: the stop must not
        try:
            code = proc.wait(GRACEFUL + 10)  # the graceful timeout, and a margin for a loaded machine
        except subprocess.TimeoutExpired:
            pytest.fail(f"the master did not stop on SIGTERM:\n{log.read_text(errors='replace')[-3000:]}")
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert answered >= 3, text[-3000:]  # the app ran: it planted
    assert ground.state() == before, "the canary changed"
    assert "Unhandled exception" not in text and "Traceback" not in master_lines(text), text[-3000:]
    # Each kind of nonsense is reported once, not once per worker or per read.
    warnings = [re.sub(r"\(/[^)]*\)", "", line.split("]", 3)[-1]) for line in text.splitlines() if "shown once" in line]
    assert len(warnings) == len(set(warnings)), warnings
    assert any("malformed" in w for w in warnings), "the scribbled reports reached the master"


def master_lines(text: str) -> str:
    """The log without the workers' own lines (the hostile app breaks its own workers' metrics, which is its
    business): what the master process wrote."""
    master = next((line.split("[", 2)[1].split("]")[0] for line in text.splitlines() if "Listening at" in line), "")
    return "\n".join(line for line in text.splitlines() if f"[{master}]" in line)
