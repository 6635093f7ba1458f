"""A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) for the example's PostgreSQL runs."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.procs import HOST


class PostgresUnavailable(RuntimeError):
    """Why no cluster can be made here (printed as the reason the PostgreSQL runs are skipped)."""


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    database: str


def pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], str | None]:
    """initdb refuses root: as root, run the cluster as the `postgres` (or `nobody`) account."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", name, "--"], name
    raise PostgresUnavailable("running as root and no unprivileged account (postgres, nobody) to run initdb as")


@contextmanager
def cluster(database: str = "bench") -> Iterator[Cluster]:
    initdb, pg_ctl, createdb = pg_tool("initdb"), pg_tool("pg_ctl"), pg_tool("createdb")
    if not (initdb and pg_ctl and createdb):
        raise PostgresUnavailable("initdb/pg_ctl not found (Debian package postgresql)")
    prefix, account = _as_user()
    root = Path(tempfile.mkdtemp(prefix="fastlaunch-bench-pg-"))
    data = root / "data"
    if account:
        shutil.chown(root, account)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    started = False
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "bench", "--no-sync")
        # The bench reads; durability is not what is measured, and seeding should be quick.
        options = f"-k {root} -h {HOST} -p {port} -c fsync=off -c synchronous_commit=off -c max_connections=200"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start")
        started = True
        run(createdb, "-h", HOST, "-p", str(port), "-U", "bench", database)
        yield Cluster(port=port, user="bench", database=database)
    finally:
        if started:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(root, ignore_errors=True)
