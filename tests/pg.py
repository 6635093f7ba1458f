"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temp directory, on 127.0.0.1 and a free
port, password authentication, stopped by pg_ctl (and by PID if that fails) and removed afterwards.

initdb refuses to run as root, so as root the cluster belongs to ``nobody`` and every PostgreSQL tool runs
through ``runuser``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import asyncpg
from support import free_port, require_tool

USER = "postgres"
PASSWORD = "pg-test-Secret-7f3a"  # tests assert it never shows up in logs


class PostgresCluster:
    def __init__(self) -> None:
        self.initdb = require_tool("initdb", "PostgreSQL tests create a throwaway cluster")
        self.pg_ctl = str(Path(self.initdb).resolve().parent / "pg_ctl")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            require_tool("runuser", "initdb refuses to run as root")
        self.dir = Path(tempfile.mkdtemp(prefix="fastlaunch-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            shutil.chown(self.dir, "nobody", "nogroup")
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(
            [self.initdb, "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "--auth=scram-sha-256"]
            + ["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]
        )

    def _run(self, args: list[str]) -> None:
        command = ["runuser", "-u", "nobody", "--", *args] if self.as_root else args
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.dir, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='' -c fsync=off"
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"])
        except RuntimeError:
            if pid_file.exists():  # pg_ctl failed: stop the postmaster by its PID
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(
                user=USER, password=PASSWORD, host=self.host, port=self.port, database=database, timeout=10
            )
            try:
                return list(await conn.fetch(sql))
            finally:
                await conn.close()

        return asyncio.run(run())

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
