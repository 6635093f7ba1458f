"""The memory budget: the master (holding the app too with PRELOAD) + the workers, each at its measured size
(``--import``), at ``WORKER_MEMORY``, or up to its ``MAX_WORKER_MEMORY`` cap, against the file's memory limit."""

from __future__ import annotations

from fastlaunch.kit.check.context import Context, Host
from fastlaunch.kit.check.report import Finding
from fastlaunch.launcher.workers import HEADROOM_FRACTION, MiB


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB"


def _fits(master: int, workers: int, each: int, limit: int, what: str) -> tuple[bool, str]:
    need, usable = master + workers * each, limit - int(limit * HEADROOM_FRACTION)
    step = (
        f"master {_mib(master)} + {workers} worker(s) x {_mib(each)} {what} = {_mib(need)} "
        f"{'>' if need > usable else '<='} {_mib(usable)} (limit {_mib(limit)} - {HEADROOM_FRACTION:.0%} headroom)"
    )
    return need <= usable, step


def check_memory(context: Context, host: Host) -> tuple[list[str], list[Finding]]:
    d = context.deployment
    plan = context.plan
    sizer = "`fastlaunch run`" if d.server == "fastlaunch" else f"{d.server} (run directly: {d.command_text})"
    lines = [f"workers, as {sizer} sizes them here:", *(f"  {step}" for step in plan.steps)]
    if context.host_cpus:
        lines.append(f"  ({context.host_cpus})")
    limit = d.memory_limit
    if limit is None:
        return lines, []
    findings: list[Finding] = []
    master = plan.request.master_memory
    if context.settings.preload and host.worker_rss:
        lines.append(f"PRELOAD on: the master holds the app too, {_mib(master)} (40 MiB + the measured app)")
    if plan.request.worker_memory is None:
        lines.append(
            "worker memory: not known here (run `fastlaunch check --import` to measure it, or set WORKER_MEMORY); "
            "`fastlaunch run` caps the workers to the limit once the first one has booted"
        )
    locations = [limit.where]
    if any("may not fit" in w for w in plan.warnings):
        findings.append(
            Finding(
                "FC201",
                "error",
                f"one worker ({_mib(plan.request.worker_memory.value if plan.request.worker_memory else 0)}) and the "
                f"master do not fit the memory limit {_mib(limit.value)}",
                d.name,
                lines,
                locations,
                "Raise the memory limit, or make the app lighter at import (load models lazily or with PRELOAD).",
            )
        )
    elif plan.request.web_concurrency and plan.workers < plan.request.web_concurrency.value:
        findings.append(
            Finding(
                "FC201",
                "warning",
                f"WEB_CONCURRENCY={plan.request.web_concurrency.value} does not fit the memory limit "
                f"{_mib(limit.value)}: `fastlaunch run` starts {plan.workers}",
                d.name,
                lines,
                [*locations, context.where("workers")],
                "Raise the memory limit or lower WEB_CONCURRENCY to what fits.",
            )
        )
    if d.server != "fastlaunch" and host.worker_rss:
        fits, step = _fits(master, plan.workers, host.worker_rss, limit.value, "(measured)")
        lines.append(step)
        if not fits:
            findings.append(
                Finding(
                    "FC201",
                    "error",
                    f"{plan.workers} {d.server} workers do not fit the memory limit {_mib(limit.value)}",
                    d.name,
                    [step],
                    [*locations, context.where("workers")],
                    "Fewer workers, a higher limit, or `fastlaunch run`, which sizes the workers to the limit.",
                )
            )
    cap = context.settings.max_worker_memory
    if isinstance(cap, int):
        fits, step = _fits(master, plan.workers, cap, limit.value, "(MAX_WORKER_MEMORY)")
        lines.append(step)
        if not fits:
            room = limit.value - int(limit.value * HEADROOM_FRACTION) - master
            findings.append(
                Finding(
                    "FC201",
                    "error",
                    "the workers may grow past the memory limit before MAX_WORKER_MEMORY recycles them: the kernel's "
                    "OOM killer acts first",
                    d.name,
                    [step],
                    [*locations, context.where("max_worker_memory")],
                    f"Lower MAX_WORKER_MEMORY to {_mib(max(0, room) // max(1, plan.workers))} or less, set "
                    "it to auto (fastlaunch sizes it to the limit), or raise the memory limit.",
                )
            )
    return lines, findings
