"""Before Gunicorn starts: can WORKER_USER's user read the app the master found? The master runs as root and reads
everything; a worker that cannot would fail with "Could not import module", which hides the cause."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from fastlaunch.core.denied import denied_message, read_fix
from fastlaunch.core.exceptions import WorkerAccessError
from fastlaunch.launcher.discover import AppTarget


def owner_names(identity: tuple[int, int]) -> tuple[str, str]:
    """(user, group) names of a uid and gid, the numbers themselves where there is no name."""
    uid, gid = identity
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def paths_to_read(target: AppTarget) -> list[tuple[Path, str]]:
    """What importing the app's module needs, in order: each directory on the way searchable, the import path
    entry and the package directories listable, the module file readable."""
    if target.file is None:
        return []
    file = target.file.resolve()
    root = target.path.resolve()
    needed: list[tuple[Path, str]] = [(d, "search") for d in reversed(file.parents)]
    needed += [(d, "list") for d in reversed(file.parents) if d == root or root in d.parents]
    needed.append((file, "read"))
    return needed


def first_denied(identity: tuple[int, int], needed: list[tuple[Path, str]]) -> Path | None:
    """The first of `needed` the user cannot use, checked in a child process that has switched to it (so that
    modes, groups, ACLs and read-only mounts all count, as they will for the workers)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe; coverage does not follow the fork
        status = 0
        try:
            os.close(read)
            uid, gid = identity
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            for path, how in needed:
                try:
                    if how == "search":
                        os.stat(path / ".")
                    elif how == "list":
                        os.listdir(path)
                    else:
                        with open(path, "rb"):
                            pass
                except PermissionError:
                    os.write(write, os.fsencode(path))
                    break
                except OSError:
                    continue
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        chunks.append(pipe.read(8192))
    os.waitpid(pid, 0)
    found = b"".join(chunks)
    return Path(os.fsdecode(found)) if found else None


def check_workers_can_read(worker_user: str, identity: tuple[int, int] | None, target: AppTarget) -> None:
    """Raises WorkerAccessError naming the user and the path when the workers could not import the app."""
    if identity is None or identity[0] == 0:
        return
    denied = first_denied(identity, paths_to_read(target))
    if denied is None:
        return
    user, group = owner_names(identity)
    directory = target.path if target.path in denied.parents or target.path == denied else denied.parent
    raise WorkerAccessError(
        denied_message(worker_user, identity[0], str(denied), doing=f"reading the app's module {target.module}"),
        hint=read_fix(f"{user}:{group}", str(directory)),
    )
