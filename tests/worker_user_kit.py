"""Running ``fastlaunch run`` with WORKER_USER=nobody from this checkout: the master must be root, and the
worker, once switched to ``nobody``, must still reach this interpreter. When the interpreter lives under a
directory other users cannot enter (pyenv under a 0700 /root), the command runs in a private mount namespace
where that directory is replaced by a 0711 one holding just the interpreter's tree: nothing on the host
changes, and nothing else of the directory becomes visible."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

WORKER_USER = "nobody"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("WORKER_USER is applied by a root master only")


def _closed_ancestor(path: Path) -> tuple[Path, Path] | None:
    """The first directory above ``path`` that others cannot enter, and its child on the way to ``path``."""
    for child in reversed([path, *path.parents][:-1]):
        parent = child.parent
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent, child
    return None


def as_root_with_worker_user(args: list[str], stage: Path) -> list[str]:
    """``args`` (run as root) such that WORKER_USER's processes can run this interpreter; ``stage`` is an empty
    directory the wrapper may mount on."""
    require_root()
    closed = _closed_ancestor(Path(os.path.realpath(sys.base_prefix)))
    if closed is None:
        return args
    if shutil.which("unshare") is None:
        pytest.skip(f"{closed[0]} is closed to other users and there is no unshare(1) to open it privately")
    parent, child = closed
    script = (
        'mount --bind "$1" "$2" && mount -t tmpfs -o mode=0711 tmpfs "$3" && mkdir -p "$1" && '
        'mount --bind "$2" "$1" && shift 3 && exec "$@"'
    )
    return ["unshare", "--mount", "sh", "-c", script, "sh", str(child), str(stage), str(parent), *args]
