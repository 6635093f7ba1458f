"""The METRICS_PORT listener: a small process serving the workers' merged metrics, so /metrics need not be
on the app's (public) port. Started and stopped by the launcher; exits by itself if the launcher dies.

Usage: python -m fastlaunch.launcher.metrics_exporter HOST PORT LAUNCHER_PID [UID GID]

With UID and GID (WORKER_USER under a root launcher) it serves as that user once its port is bound: the files
it reads are the workers', and a root process never parses what a worker wrote.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main(argv: list[str]) -> int:
    host, port, launcher = argv[0], int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher stops us with SIGTERM
    from prometheus_client import start_http_server

    from fastlaunch.worker.metrics import registry

    try:
        start_http_server(port, addr=host, registry=registry())
    except OSError as exc:
        print(exc.strerror or exc, flush=True)
        return 1
    if len(argv) == 5:  # no worker has started yet, so nothing was read as root
        uid, gid = int(argv[3]), int(argv[4])
        os.setgroups([gid])
        os.setgid(gid)
        os.setuid(uid)
    print("ready", flush=True)
    while os.getppid() == launcher:
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
