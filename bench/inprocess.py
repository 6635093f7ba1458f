"""``python -m bench.inprocess``: the CPU one request costs the worker's Python stack, without sockets or wrk.

Each stack gets requests on one keep-alive connection through an in-memory transport: Uvicorn's HTTP protocol
parses them, the app answers, and the transport counts the writes. The figure is the fastest of several
batches, in process CPU time per request. It leaves out what the kernel and the event loop's polling cost
(wrk measures all of it), but it varies by a few per cent between runs where wrk varies by 5-10 %, so it can
see a change of 2-3 µs.

Stacks: ``uvicorn`` is what bare Gunicorn + uvicorn-worker runs: Uvicorn's httptools protocol with its
proxy-headers middleware. ``fastlaunch`` is what the fastlaunch worker runs, with the access log off: its
protocol (one write per response) and the request-id middleware. fastlaunch's runs more Python per request
(the request id and its header) and makes one write where Uvicorn makes two; a write's cost is in the kernel,
which this leaves out and wrk does not.

``--instructions`` counts instead of timing (bench/instructions.py): each stack serves 200 and then 2,200
requests under valgrind's callgrind, and the difference over 2,000 is its instructions per request, on these
apps and the example service on SQLite and PostgreSQL, with fastlaunch's event-loop watchdog on and off. The
count is the same from run to run whatever else the machine is doing, so it shows a change of a few hundred
instructions (about 0.1 µs). The figures are saved to bench/results/instructions.json and judged by
``python -m bench`` beside the wrk ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from bench.memory_transport import MemoryTransport
from bench.plan import APPS_DIR, DOCS, RAW

REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench\r\n\r\n"
# app name -> (import "module:attr", path requested)
APPS = {DOCS.name: (DOCS.app, "/async"), RAW.name: (RAW.app, "/")}


# Access logs off (as in the bench's throughput runs), no logging set-up, no lifespan.
QUIET: dict[str, Any] = {"access_log": False, "log_config": None, "lifespan": "off"}


def _uvicorn(app: Any) -> Config:
    return Config(app=app, http="httptools", proxy_headers=True, forwarded_allow_ips="127.0.0.1", **QUIET)


def _fastlaunch(app: Any) -> Config:
    from fastlaunch.worker.middleware import ObservabilityMiddleware
    from fastlaunch.worker.protocol_choice import HTTP

    wrapped = ObservabilityMiddleware(app, forwarded_allow_ips="127.0.0.1")
    return Config(app=wrapped, http=HTTP, proxy_headers=False, **QUIET)


STACKS: dict[str, Callable[[Any], Config]] = {"uvicorn": _uvicorn, "fastlaunch": _fastlaunch}


async def _measure(config: Config, path: str, batches: int, per_batch: int) -> tuple[float, float]:
    """(fastest batch's CPU µs per request, writes per request)."""
    config.load()
    protocol: Any = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = MemoryTransport()
    protocol.connection_made(transport)
    request = REQUEST % path.encode()

    async def one() -> None:
        protocol.data_received(request)
        cycle = protocol.cycle
        while not cycle.response_complete:
            await asyncio.sleep(0)

    for _ in range(200):  # warm-up
        await one()
    best = float("inf")
    writes_before = transport.writes
    for _ in range(batches):
        start = time.process_time()
        for _ in range(per_batch):
            await one()
        best = min(best, time.process_time() - start)
    return best / per_batch * 1e6, (transport.writes - writes_before) / (batches * per_batch)


def _app(app_name: str) -> tuple[Any, str]:
    target, path = APPS[app_name]
    module, _, attr = target.partition(":")
    return getattr(__import__(module), attr), path


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return asyncio.new_event_loop


def count_instructions() -> None:
    from bench import instructions

    skipped: list[str] = []
    counts = instructions.measure(skipped)
    print("\n".join(instructions.table(counts)))
    for line in skipped:
        print(f"skipped: {line}")
    instructions.save(counts)
    print(f"Saved: {instructions.RESULTS} (judged by python -m bench)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--batches", type=int, default=10, help="batches per round (default 10)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per batch (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the stacks alternating (default 5)")
    parser.add_argument("--instructions", action="store_true", help="count instructions per request (valgrind)")
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(APPS_DIR))
    args = parser.parse_args(argv)
    if args.instructions:
        count_instructions()
        return
    loop_factory = _loop_factory()
    gc.freeze()  # as the fastlaunch worker does; both stacks alike
    print(f"{'app':5s} {'stack':11s} {'CPU µs/request':>15s} {'writes/request':>15s}   (fastest batch per round)")
    for app_name in APPS:
        app, path = _app(app_name)
        results: dict[str, list[float]] = {name: [] for name in STACKS}
        writes: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, stack in STACKS.items():
                with asyncio.Runner(loop_factory=loop_factory) as runner:
                    cpu, writes[name] = runner.run(_measure(stack(app), path, args.batches, args.requests))
                results[name].append(cpu)
        for name, cpus in results.items():
            rounds = " ".join(f"{c:.1f}" for c in cpus)
            print(f"{app_name:5s} {name:11s} {min(cpus):15.1f} {writes[name]:15.1f}   {rounds}")


if __name__ == "__main__":
    main()
