"""Instructions per request under valgrind's callgrind (``python -m bench.inprocess --instructions``).

Each stack serves 200 and then 2,200 requests on one keep-alive connection through bench.inprocess's in-memory
transport, and the difference over 2,000 is its instructions per request: the same from run to run whatever
else the machine is doing, where wall-clock figures of a shared machine vary by 5-10 %.

Apps: the raw ASGI app, FastAPI's docs app (``/async``) and the example service (``/posts?limit=10``) on SQLite
and on a throwaway PostgreSQL cluster (skipped with the reason when either cannot be had). Stacks:
``uvicorn`` (bare Gunicorn + uvicorn-worker's: Uvicorn's protocol and proxy-headers middleware),
``fastlaunch`` (its protocol and request-id middleware, access log off) and ``fastlaunch+watchdog``, the same
with the event-loop watchdog running as LOOP_BLOCK_WARN=1 (the default) runs it.

The watchdog's work is paced by the clock, not by requests: under callgrind, about 50 times slower than
natively, it does about 50 times as much of it per request as it does in production, so its count here is an
upper bound of its cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import example, postgres

RESULTS = Path(__file__).with_name("results") / "instructions.json"
FEW, MANY = 200, 2200
STACK_NAMES = ("uvicorn", "fastlaunch", "fastlaunch+watchdog")
WATCHDOG_SECONDS = 1.0  # LOOP_BLOCK_WARN's default
EXAMPLE_PATH = "/posts?limit=10"


@dataclass(frozen=True)
class Count:
    app: str
    stack: str
    per_request: float


def serve(stack: str, app: Any, path: str, count: int, *, waits_for_io: bool) -> None:
    """``count`` requests through ``stack`` (run in the child under callgrind)."""
    from uvicorn.server import ServerState

    from bench.inprocess import REQUEST, STACKS, _loop_factory
    from bench.memory_transport import MemoryTransport

    async def run() -> None:
        done = asyncio.Event()

        async def signalling(scope: Any, receive: Any, send: Any) -> None:
            await app(scope, receive, send)
            done.set()

        # A database answers later: the driver waits for the app without spinning the loop meanwhile.
        served = signalling if waits_for_io else app
        config = STACKS[stack.removesuffix("+watchdog")](served)
        config.load()
        protocol: Any = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
        protocol.connection_made(MemoryTransport())
        watchdog = None
        if stack.endswith("+watchdog"):
            from fastlaunch.worker.watchdog import LoopWatchdog

            watchdog = LoopWatchdog(asyncio.get_running_loop(), WATCHDOG_SECONDS, app=served)
            watchdog.start()
            watchdog.started()
        request = REQUEST % path.encode()
        for _ in range(count):
            protocol.data_received(request)
            if waits_for_io:
                await done.wait()
                done.clear()
            cycle = protocol.cycle
            while not cycle.response_complete:
                await asyncio.sleep(0)
        if watchdog is not None:
            watchdog.stop()

    import gc

    gc.freeze()  # as the fastlaunch worker does; every stack alike
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run())


@dataclass(frozen=True)
class Target:
    """An app as the child imports it: ``module:attr``, the path requested, its directory and environment."""

    name: str
    app: str
    path: str
    cwd: Path
    env: dict[str, str]
    waits_for_io: bool = False


def _count(target: Target, stack: str, requests: int, valgrind: str) -> int:
    args = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "bench.instructions"]
    args += [stack, target.app, target.path, str(requests), "io" if target.waits_for_io else "-"]
    env = {**os.environ, **target.env, "PYTHONPATH": os.pathsep.join([str(example.ROOT), str(target.cwd)])}
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=target.cwd, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"{target.name} {stack}: callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _per_request(target: Target, stack: str, valgrind: str) -> Count:
    few, many = (_count(target, stack, n, valgrind) for n in (FEW, MANY))
    return Count(target.name, stack, (many - few) / (MANY - FEW))


@contextmanager
def targets(skipped: list[str]) -> Iterator[list[Target]]:
    """The apps measured; the example's databases exist until the context ends."""
    from bench.plan import APPS_DIR, DOCS, RAW

    found = [Target(RAW.name, RAW.app, "/", APPS_DIR, {}), Target(DOCS.name, DOCS.app, "/async", APPS_DIR, {})]
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="fastlaunch-instructions-"))
        stack.callback(shutil.rmtree, work, True)
        try:
            config = example.load_config()
            app = example.resolve_app(config)
        except example.ExampleUnavailable as exc:
            skipped.append(f"instructions, example service: {exc}")
            yield found
            return
        for database in config.databases:
            values = {"workdir": str(work)}
            try:
                if database == "postgresql":
                    cluster = stack.enter_context(postgres.cluster())
                    values |= {"port": str(cluster.port), "user": cluster.user, "database": cluster.database}
                env = {config.database_env: example.expand(config.databases[database], values), **config.env}
                example.prepare(config, {**os.environ, **env}, work / f"prepare-{database}.log")
                target = Target(f"example-{database}", app, EXAMPLE_PATH, config.dir, env, waits_for_io=True)
                example.seed_in_process(config, app, config.dir, env)
            except (example.ExampleUnavailable, postgres.PostgresUnavailable, OSError) as exc:
                skipped.append(f"instructions, example on {database}: {exc}")
                continue
            found.append(target)
        yield found


def measure(skipped: list[str], jobs: int = 2) -> list[Count]:
    """Every app on every stack; ``jobs`` callgrind runs at a time (the counts do not depend on it)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("counting instructions needs valgrind (apt-get install valgrind)")
    with targets(skipped) as found, ThreadPoolExecutor(jobs) as pool:
        runs = [pool.submit(_per_request, target, stack, valgrind) for target in found for stack in STACK_NAMES]
        return [run.result() for run in runs]


def save(counts: list[Count], path: Path = RESULTS) -> None:
    path.write_text(json.dumps([asdict(c) for c in counts], indent=1) + "\n")


def load(path: Path = RESULTS) -> list[Count]:
    return [Count(**c) for c in json.loads(path.read_text())] if path.is_file() else []


def table(counts: list[Count]) -> list[str]:
    lines = [f"{'app':18s} {'stack':20s} {'instructions/request':>21s}   (callgrind, {MANY} minus {FEW} requests)"]
    lines += [f"{c.app:18s} {c.stack:20s} {c.per_request:21,.0f}" for c in counts]
    return lines


def main(argv: list[str]) -> None:
    """The child: STACK MODULE:ATTR PATH COUNT io|-."""
    stack, target, path, count, io = argv
    module, _, attr = target.partition(":")
    __import__(module)
    serve(stack, getattr(sys.modules[module], attr), path, int(count), waits_for_io=io == "io")


if __name__ == "__main__":
    main(sys.argv[1:])
