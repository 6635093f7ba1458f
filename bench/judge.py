"""The ratios fastlaunch is judged on, each against its goal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.coldstart_results import ColdStart
from bench.plan import DOCS_ENDPOINTS
from bench.servers import PEERS, SERVERS
from bench.stats import ConfigStats, rps, served_rps


@dataclass(frozen=True)
class Verdict:
    name: str
    value: float | None
    goal: str  # e.g. ">= 0.97"; empty for figures shown for context only
    detail: str

    @property
    def met(self) -> bool | None:
        if self.value is None or not self.goal:
            return None
        op, bound = self.goal.split()
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "no data" if self.goal else "(context)"}[self.met]


def docs_key(server: str, access_log: bool = False) -> str:
    on = access_log or not SERVERS[server].access_log_off
    return f"{server}/docs/{'log' if on else 'nolog'}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _p99(stats: dict[str, ConfigStats], key: str, path: str) -> float | None:
    config = stats.get(key)
    return config.endpoints[path].p99_ms if config and path in config.endpoints else None


def _peer_ratios(stats: dict[str, ConfigStats]) -> list[Verdict]:
    out: list[Verdict] = []
    fl = docs_key("fastlaunch")
    for path in DOCS_ENDPOINTS:
        peers = {p: rps(stats, docs_key(p), path) for p in PEERS}
        ranked = sorted(((v, p) for p, v in peers.items() if v is not None), reverse=True)
        best = ranked[0] if ranked else (None, "")
        out.append(
            Verdict(
                f"fastlaunch / best peer, `{path}`",
                _ratio(rps(stats, fl, path), best[0]),
                ">= 1.0",
                f"best peer: {SERVERS[best[1]].label}" if best[1] else "no peer measured",
            )  # fmt: skip
        )
    for path in DOCS_ENDPOINTS:
        latencies = sorted((v, p) for p in PEERS if (v := _p99(stats, docs_key(p), path)) is not None)
        low = latencies[0] if latencies else (None, "")
        out.append(
            Verdict(
                f"p99 latency, fastlaunch / best peer, `{path}`",
                _ratio(_p99(stats, fl, path), low[0]),
                "<= 1.0",
                f"lowest peer p99: {SERVERS[low[1]].label}, {low[0]:.1f} ms" if low[1] else "no peer measured",
            )  # fmt: skip
        )
    for path in DOCS_ENDPOINTS:
        out.append(
            Verdict(
                f"fastlaunch / `fastapi run`, `{path}`",
                _ratio(rps(stats, fl, path), rps(stats, docs_key("fastapi"), path)),
                ">= 1.15",
                "fastlaunch with its access log off; fastapi run cannot turn its own off",
            )  # fmt: skip
        )
    for path in DOCS_ENDPOINTS:
        cpu = {s: stats[docs_key(s)].endpoints.get(path) for s in ("fastlaunch", "gunicorn") if docs_key(s) in stats}
        fl_cpu, gu_cpu = (cpu.get(s) for s in ("fastlaunch", "gunicorn"))
        out.append(
            Verdict(
                f"server CPU per request, fastlaunch / bare gunicorn, `{path}`",
                _ratio(fl_cpu.cpu_us if fl_cpu else None, gu_cpu.cpu_us if gu_cpu else None),
                "",
                "same stack: expected about 1.0 (lower is better)",
            )  # fmt: skip
        )
    # Granian is the peer with the least CPU per request; #31's goal is to spend no more than it anywhere.
    for path in DOCS_ENDPOINTS:
        cpu = {s: stats[docs_key(s)].endpoints.get(path) for s in ("fastlaunch", "granian") if docs_key(s) in stats}
        fl_cpu, gr_cpu = (cpu.get(s) for s in ("fastlaunch", "granian"))
        detail = f"{fl_cpu.cpu_us:.0f} vs {gr_cpu.cpu_us:.0f} µs" if fl_cpu and gr_cpu else "not measured"
        out.append(
            Verdict(
                f"server CPU per request, fastlaunch / granian, `{path}`",
                _ratio(fl_cpu.cpu_us if fl_cpu else None, gr_cpu.cpu_us if gr_cpu else None),
                "<= 1.0",
                detail,
            )  # fmt: skip
        )
    # Admission control's cost (closed-loop, as the rest): the goal is 2 %. Only responses under 400
    # count: a 503 answered at once would otherwise pass for a request served, and a guard that sheds for
    # a cheap rate.
    for path in DOCS_ENDPOINTS:
        on, off = served_rps(stats, docs_key("fastlaunch-overload"), path), served_rps(stats, fl, path)
        if on is not None:
            out.append(Verdict(f"OVERLOAD=auto / off, fastlaunch, `{path}`", _ratio(on, off), ">= 0.98", ""))
    for server in ["fastlaunch", *PEERS]:
        if not SERVERS[server].access_log_off:
            continue
        on, off = rps(stats, docs_key(server, True), "/"), rps(stats, docs_key(server), "/")
        goal = ">= 0.90" if server == "fastlaunch" else ""
        out.append(Verdict(f"access log on / off, {SERVERS[server].label}, `/`", _ratio(on, off), goal, ""))
    return out


def _watchdog_ratios(stats: dict[str, ConfigStats], apps: list[tuple[str, str]]) -> list[Verdict]:
    """The event-loop watchdog runs in every fastlaunch worker by default: its cost is this ratio's distance
    from 1 (the slices' spread is a few per cent), on every app the bench served with it off too."""
    out: list[Verdict] = []
    for app, label in apps:
        on_key, off_key = f"fastlaunch/{app}/nolog", f"fastlaunch-nowatchdog/{app}/nolog"
        for path in stats[off_key].endpoints if off_key in stats else ():
            on, off = rps(stats, on_key, path), rps(stats, off_key, path)
            name = f"watchdog on / off, fastlaunch, `{path}`" + ("" if app == "docs" else f", {label}")
            out.append(Verdict(name, _ratio(on, off), ">= 0.97", ""))
    return out


INSTRUCTION_GOALS = {"raw": "<= 0.75", "docs": "<= 0.97"}  # fastlaunch / the bare Uvicorn stack
WATCHDOG_INSTRUCTIONS = "<= 1.01"  # watchdog on / off: at most 1 % more instructions per request


def instruction_verdicts(counts: dict[tuple[str, str], float], source: str) -> list[Verdict]:
    """From bench.instructions' counts, (app, stack) -> instructions per request; deterministic, so judged on
    every run. source: where the counts come from (this run or the saved file)."""
    out: list[Verdict] = []
    apps = list(dict.fromkeys(app for app, _ in counts)) or list(INSTRUCTION_GOALS)
    watchdog_goals = dict.fromkeys(apps, WATCHDOG_INSTRUCTIONS)
    ratios = [
        ("fastlaunch / bare Uvicorn stack", "fastlaunch", "uvicorn", INSTRUCTION_GOALS),
        ("watchdog on / off", "fastlaunch+watchdog", "fastlaunch", watchdog_goals),
    ]
    for title, top, bottom, goals in ratios:
        for app in apps:
            a, b = counts.get((app, top)), counts.get((app, bottom))
            detail = f"{a:,.0f} vs {b:,.0f}, {source}" if a and b else "not measured"
            out.append(Verdict(f"instructions per request, {title}, {app}", _ratio(a, b), goals.get(app, ""), detail))
    return out


def _against_gunicorn(stats: dict[str, ConfigStats], apps: list[tuple[str, str]]) -> list[Verdict]:
    """Startup and master RSS of fastlaunch against bare Gunicorn (same worker class) on each app both served.
    apps: (app name, label), e.g. ("example-postgresql", "example on PostgreSQL, migrations at head")."""
    out: list[Verdict] = []
    for app, label in apps:
        fl, gu = stats.get(f"fastlaunch/{app}/nolog"), stats.get(f"gunicorn/{app}/nolog")
        fl_start, gu_start = (fl.startup_s if fl else None), (gu.startup_s if gu else None)
        out.append(
            Verdict(
                f"startup to first 200, fastlaunch / bare gunicorn, {label}",
                _ratio(fl_start.median if fl_start else None, gu_start.median if gu_start else None),
                "<= 1.1" if app == "docs" else "<= 1.2",
                f"{fl_start.median:.2f} s vs {gu_start.median:.2f} s" if fl_start and gu_start else "not measured",
            )  # fmt: skip
        )
    for app, label in apps:
        fl, gu = stats.get(f"fastlaunch/{app}/nolog"), stats.get(f"gunicorn/{app}/nolog")
        fl_rss, gu_rss = (fl.master_mib if fl else None), (gu.master_mib if gu else None)
        out.append(
            Verdict(
                f"master RSS, fastlaunch / bare gunicorn, {label}",
                _ratio(fl_rss, gu_rss),
                "<= 1.1",
                f"{fl_rss:.0f} MiB vs {gu_rss:.0f} MiB" if fl_rss and gu_rss else "not measured",
            )  # fmt: skip
        )
    return out


def _cpu(with_: ColdStart, without: ColdStart) -> str:
    a, b = with_.median_cpu_s, without.median_cpu_s
    return f"; CPU used by then {a:.2f} s vs {b:.2f} s ({a / b:.2f})" if a and b else ""


def _cold_starts(cold: list[ColdStart]) -> list[Verdict]:
    out: list[Verdict] = []
    for project in dict.fromkeys(c.project for c in cold):
        by = {c.variant: c for c in cold if c.project == project}
        with_, without = by.get("bytecode"), by.get("no bytecode")
        if not (with_ and without):
            continue
        out.append(
            Verdict(
                f"image cold start, bytecode / no bytecode, {project} image",
                _ratio(with_.median_s, without.median_s),
                "<= 0.7" if project == "example" else "",
                f"{with_.median_s:.2f} s ({with_.size_mb:.0f} MB) vs {without.median_s:.2f} s "
                f"({without.size_mb:.0f} MB), podman run to first 200{_cpu(with_, without)}",
            )  # fmt: skip
        )
    if not out:
        out.append(Verdict("image cold start, bytecode / no bytecode, example image", None, "<= 0.7", "not measured"))
    return out


def verdicts(
    stats: dict[str, ConfigStats], examples: list[tuple[str, str]], cold: list[ColdStart] | None = None
) -> list[Verdict]:
    """examples: (app name, label) of each example configuration measured; cold: the image cold starts."""
    apps = [("docs", "FastAPI docs app"), *examples]
    ceiling = [("raw", "raw ASGI app")]
    watchdog = _watchdog_ratios(stats, [*apps[:1], *ceiling, *examples])
    return [*_peer_ratios(stats), *watchdog, *_against_gunicorn(stats, apps), *_cold_starts(cold or [])]


FASTLAUNCH_GUARDED = "fastlaunch OVERLOAD=auto"


def overload_verdicts(data: dict[str, Any]) -> list[Verdict]:
    """The overload scenario's goals (bench/overload.py), from its JSON, for each app it loaded."""
    return [v for scenario in data.get("scenarios", []) for v in _overload_scenario(scenario)]


def _overload_scenario(scenario: dict[str, Any]) -> list[Verdict]:
    label = scenario["label"]
    ran = [s for s in scenario["servers"] if s["steps"]]
    runs = {s["name"]: {step["factor"]: step for step in s["steps"][:-1]} for s in ran}
    fl = next((s for s in ran if s["name"] == FASTLAUNCH_GUARDED), None)

    def figure(name: str, factor: float, key: str) -> float | None:
        value = runs.get(name, {}).get(factor, {}).get(key)
        return float(value) if value is not None else None

    out = [
        Verdict(
            f"overload, {label}: goodput at 2x / at 1x", _ratio(figure(FASTLAUNCH_GUARDED, 2.0, "goodput"),
            figure(FASTLAUNCH_GUARDED, 1.0, "goodput")), ">= 0.9", "fastlaunch, OVERLOAD=auto",
        ),
        Verdict(
            f"overload, {label}: admitted p99 at 2x / at 0.5x", _ratio(figure(FASTLAUNCH_GUARDED, 2.0, "p99_ms"),
            figure(FASTLAUNCH_GUARDED, 0.5, "p99_ms")), "<= 3", "fastlaunch, OVERLOAD=auto",
        ),
    ]  # fmt: skip
    # The peers include each swept bound at its best value (bench/overload.py); fastlaunch's own variants are not.
    peers = [name for name in runs if not name.startswith("fastlaunch")]
    for factor in (2.0, 3.0):
        best = max(peers, key=lambda name: figure(name, factor, "goodput") or 0.0, default="")
        out.append(
            Verdict(
                f"overload, {label}: goodput at {factor:g}x / best peer",
                _ratio(figure(FASTLAUNCH_GUARDED, factor, "goodput"), figure(best, factor, "goodput"))
                if best
                else None,
                ">= 1.0",
                f"best peer: {best}" if best else "no peer measured",
            )  # fmt: skip
        )
    # Never normal again within the last step is a miss, not a lack of data.
    recovery = None if fl is None else fl["recovery_s"]
    never = fl is not None and recovery is None
    out.append(
        Verdict(
            f"overload, {label}: seconds to normal p99 after the spike",
            float("inf") if never else recovery,
            "<= 2",
            "fastlaunch, OVERLOAD=auto" + (": not normal again within the last step" if never else ""),
        )  # fmt: skip
    )
    return out
