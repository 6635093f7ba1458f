"""The ratios fastlaunch is judged on, each against its goal."""

from __future__ import annotations

from dataclasses import dataclass

from bench.plan import DOCS_ENDPOINTS
from bench.servers import PEERS, SERVERS
from bench.stats import ConfigStats, rps


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


def verdicts(stats: dict[str, ConfigStats], example_pg: tuple[str, str] | None) -> list[Verdict]:
    """example_pg: (app name, list endpoint) of the example on PostgreSQL, when it was measured."""
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
                ">= 0.97",
                f"best peer: {SERVERS[best[1]].label}" if best[1] else "no peer measured",
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
    for server in ["fastlaunch", *PEERS]:
        if not SERVERS[server].access_log_off:
            continue
        on, off = rps(stats, docs_key(server, True), "/"), rps(stats, docs_key(server), "/")
        goal = ">= 0.90" if server == "fastlaunch" else ""
        out.append(Verdict(f"access log on / off, {SERVERS[server].label}, `/`", _ratio(on, off), goal, ""))
    startup = {s: stats[docs_key(s)].startup_s for s in ("fastlaunch", "gunicorn") if docs_key(s) in stats}
    fl_start, gu_start = startup.get("fastlaunch"), startup.get("gunicorn")
    out.append(
        Verdict(
            "startup to first 200, fastlaunch / bare gunicorn",
            _ratio(fl_start.median if fl_start else None, gu_start.median if gu_start else None),
            "<= 1.1",
            f"{fl_start.median:.2f} s vs {gu_start.median:.2f} s" if fl_start and gu_start else "",
        )  # fmt: skip
    )
    posts = rps(stats, f"fastlaunch/{example_pg[0]}/nolog", example_pg[1]) if example_pg else None
    out.append(
        Verdict(
            f"example `{example_pg[1] if example_pg else '/posts'}` on PostgreSQL / docs app `/async` (fastlaunch)",
            _ratio(posts, rps(stats, fl, "/async")),
            ">= 0.5",
            "" if example_pg else "example on PostgreSQL not measured",
        )  # fmt: skip
    )
    return out
