"""``python -m bench.profile SERVER``: where a server's workers spend their time under wrk load (py-spy).

Writes py-spy's collapsed stacks to bench/results/raw/profile-*.txt and prints the share of samples each
package appears in (inclusive) and the functions that use the most CPU themselves.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.measure import free_port
from bench.plan import DOCS
from bench.procs import HOST, start_server
from bench.servers import SERVERS, Launch
from bench.wrk import wrk_path

OUT = Path(__file__).with_name("results") / "raw"


def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    # --subprocesses puts a `process PID:"cmdline"` frame first; it says which process, not where.
    return [f for f in stack.split(";") if not f.startswith("process ")], int(count)


def package(frame: str) -> str:
    """`func (uvicorn/protocols/http/httptools_impl.py)` -> `uvicorn`; `<module> (x.py)` -> `x.py`."""
    where = frame.rpartition("(")[2].rstrip(")")
    return where.split("/", 1)[0] if "/" in where else where


def summarize(raw: Path, top: int = 15) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        if not stack:
            continue
        total += count
        for name in {package(f) for f in stack}:
            inclusive[name] += count
        own[stack[-1]] += count
    lines = [f"{total} samples holding the GIL in {raw}", "", "package share (inclusive):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("server", choices=list(SERVERS))
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--path", default="/")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = wrk_path()
    if wrk is None or not Path(spy).exists():
        sys.exit("needs wrk (apt-get install wrk) and py-spy (make bench installs it)")
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"profile-{args.server}-{'log' if args.access_log else 'nolog'}.txt"
    port = free_port()
    command = SERVERS[args.server].command(Launch(DOCS.app, port, args.workers, args.access_log))
    server = start_server(command, cwd=DOCS.cwd, env={}, port=port, ready_path="/", log=OUT / "profile-server.log")
    try:
        server.settle(args.workers)
        load = subprocess.Popen(
            [wrk, "-t1", "-c64", f"-d{args.duration + 3}s", f"http://{HOST}:{port}{args.path}"],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1)
            spy_args = [spy, "record", "-p", str(server.pid), "--subprocesses", "--nonblocking", "--nolineno", "--gil"]
            spy_args += ["-d", str(args.duration), "-f", "raw", "-o", str(raw)]
            subprocess.run(spy_args, check=True, capture_output=True, timeout=args.duration + 60)
        finally:
            load.wait(args.duration + 30)
    finally:
        server.stop()
    print(summarize(raw))


if __name__ == "__main__":
    main()
