"""A compromised app: at import and on every request it plants symlinks (to the canary, a root-only file),
FIFOs, directories, huge sparse files, bad names and bad contents in every directory it can reach that the
master might read or write. It never writes the canary itself: any change to it is someone else's doing.

HOSTILE_CANARY: the file the links point to. HOSTILE_DIRS: more directories to plant in (os.pathsep-separated).
HOSTILE_TAG: a prefix for what it plants in shared places (/dev/shm, /tmp), so the test can clean up.
"""

import contextlib
import glob
import os
import tempfile

CANARY = os.environ["HOSTILE_CANARY"]
TAG = os.environ.get("HOSTILE_TAG", "hostile")


def places():
    found = [d for d in os.environ.get("HOSTILE_DIRS", "").split(os.pathsep) if d]
    found += [os.environ.get(v) for v in ("PROMETHEUS_MULTIPROC_DIR", "FASTLAUNCH_METRICS_ARCHIVE")]
    found += glob.glob("/dev/shm/fastlaunch-*") + ["/dev/shm", tempfile.gettempdir()]
    return [d for d in found if d and os.path.isdir(d)]


def shared(directory):
    return directory in ("/dev/shm", tempfile.gettempdir())


def plant(directory, name, kind):
    path = os.path.join(directory, name)
    with contextlib.suppress(OSError):
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)
        if kind == "link":
            os.symlink(CANARY, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif kind == "huge":
            with open(path, "wb") as f:
                f.truncate(8 * 2**30)  # sparse: costs nothing, reads forever
        else:
            with open(path, "wb") as f:
                f.write(kind.encode() if isinstance(kind, str) else kind)


def names(pid, master):
    """The names fastlaunch's master used, or might use, for this worker, its siblings and itself."""
    for target in (pid, master, pid + 1, pid + 2, "x", "", "-1", "../../etc"):
        yield f"serving.{target}", "link"
        yield f"booted.{target}", "fifo"
        yield f"exit.{target}", "fifo"
        yield f".booted.{target}.tmp", "link"
    yield ".memory-cap.tmp", "link"
    yield "memory-cap", "dir"
    yield "counter_x.db", "\xff" * 64
    yield "counter_archive.db", "link"
    yield f"gauge_livesum_{master}.db", "dir"
    yield f"histogram_{master}.db", "fifo"
    yield "summary_garbage.db", b"\x40\x00\x00\x00" + b"\x10\x00\x00\x00" * 40


def own_metric_files(pid):
    """This worker's own metrics files, once prometheus_client has them open (replacing the name leaves its
    mapping alone): what the master reads when it reaps this worker."""
    return [
        (f"counter_{pid}.db", "link"),
        (f"histogram_{pid}.db", "fifo"),
        (f"summary_{pid}.db", "huge"),
        (f"gauge_livesum_{pid}.db", "dir"),
        (f"gauge_all_{pid}.db", "\x00" * 3),
    ]


def attack(*, own_metrics=False):
    pid, master = os.getpid(), os.getppid()
    for directory in places():
        prefix = f"{TAG}-" if shared(directory) else ""
        for name, kind in names(pid, master):
            plant(directory, prefix + name, kind)
        if own_metrics and directory == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            for name, kind in own_metric_files(pid):
                if os.path.exists(os.path.join(directory, name)) or kind in ("dir", "huge"):
                    plant(directory, name, kind)


attack()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/attack":
        attack(own_metrics=True)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
