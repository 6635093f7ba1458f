"""``fastlaunch check``: the preflight that does the arithmetic of a deploy at scale (connections, memory)
and checks that the deployment files agree with the app and with each other."""

from __future__ import annotations

import os
import time

from fastlaunch.core.settings import Settings
from fastlaunch.kit.check.context import Host


def measure_host(settings: Settings, *, cpus: int | None, import_app: bool) -> Host:
    """The inputs that are not in any file: the hosts' CPUs, and with ``import_app`` a worker's memory and
    import time, measured in a child process (as ``fastlaunch workers --measure`` does)."""
    count = cpus or os.cpu_count() or 1
    source = "--cpus" if cpus else "this machine's; --cpus N checks another host"
    if not import_app:
        return Host(count, source)
    from fastlaunch.launcher.discover import discover
    from fastlaunch.launcher.workers import measure_worker_rss

    target = discover(settings)
    started = time.monotonic()
    rss = measure_worker_rss(target)
    if rss is None:
        note = (
            f"--import: {target.import_string} could not be imported in a child process (run `fastlaunch dev` to "
            "see why); worker memory not measured"
        )
        return Host(count, source, note=note)
    return Host(count, source, worker_rss=rss, import_seconds=time.monotonic() - started)
