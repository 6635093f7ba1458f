"""A compromised app: at import and on every request it plants symlinks (to the canary, a root-only file),
FIFOs, directories, huge sparse files, bad names and bad contents in every directory it can reach that the
master might read or write; on every request it also scribbles over all the shared memory it holds (its own
and its siblings' reports to the master, the memory cap, its metrics files). It never writes the canary
itself: any change to it is someone else's doing.

HOSTILE_CANARY: the file the links point to. HOSTILE_DIRS: more directories to plant in (os.pathsep-separated).
HOSTILE_TAG: a prefix for what it plants in shared places (/dev/shm, /tmp), so the test can clean up.
"""

import contextlib
import gc
import glob
import mmap
import os
import struct
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


def mappings():
    """Every mmap this process holds a reference to: in a module's globals or an object's attributes (mmap
    objects themselves are not tracked by the collector)."""
    found = {}
    gc.unfreeze()  # fastlaunch freezes what the import made, which hides it from get_objects()
    for holder in gc.get_objects():
        attributes = holder if isinstance(holder, dict) else getattr(holder, "__dict__", None)
        if isinstance(attributes, dict):
            for value in list(attributes.values()):
                if isinstance(value, mmap.mmap):
                    found[id(value)] = value
    return list(found.values())


def scribble(round_):
    """Garbage, then well-formed pairs with values out of range, over every shared mapping in this process."""
    for memory in mappings():
        with contextlib.suppress(ValueError, TypeError, IndexError):
            size = len(memory)
            if round_ % 2:
                memory[:size] = os.urandom(size)
            else:
                value = (-1, 2**62, 99, 7)[round_ // 2 % 4]
                pair = struct.pack("<qq", value, ~value)
                memory[:size] = (pair * (size // 16 + 1))[:size]


attack()
rounds = 0


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    global rounds
    if scope["path"] == "/attack":
        attack(own_metrics=True)
        rounds += 1
        scribble(rounds)
        if rounds % 2 == 0:
            os._exit(0)  # without a word: the master reads only what was scribbled
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
