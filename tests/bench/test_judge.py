"""The judged ratios, computed from summarized figures: startup and master RSS against bare Gunicorn on every
app both served, p99 against the lowest peer, the images' cold start with bytecode against without."""

from __future__ import annotations

import sys

import pytest
from support import ROOT

# The repository's bench package, not this tests/bench folder (a namespace package on pytest's path).
sys.path.insert(0, str(ROOT))

from bench.coldstart_results import ColdStart
from bench.judge import instruction_verdicts, overload_verdicts, verdicts
from bench.measure import Sample
from bench.plan import DOCS_ENDPOINTS
from bench.stats import ConfigStats, EndpointStats, Spread, summarize_all
from bench.wrk import WrkResult


def figures(key: str, *, rps: float, p99: float, startup: float, master: float, cpu: float = 100.0) -> ConfigStats:
    endpoint = EndpointStats(Spread.of([rps]), p50_ms=1.0, p99_ms=p99, cpu_us=cpu, socket_errors=0, non_2xx=0)
    return ConfigStats(
        key, 1, 0, Spread.of([startup]), master, 40.0, 2, dict.fromkeys(DOCS_ENDPOINTS, endpoint)
    )  # fmt: skip


def test_ratios_against_bare_gunicorn_peers_and_cold_start() -> None:
    stats = {
        "fastlaunch/docs/nolog": figures("fastlaunch/docs/nolog", rps=1100, p99=20, startup=0.55, master=30),
        "gunicorn/docs/nolog": figures("gunicorn/docs/nolog", rps=1000, p99=40, startup=0.5, master=29),
        "granian/docs/nolog": figures("granian/docs/nolog", rps=1000, p99=34, startup=0.5, master=20),
        "fastlaunch/example-postgresql/nolog": figures("x", rps=1, p99=1, startup=0.66, master=58),
        "gunicorn/example-postgresql/nolog": figures("x", rps=1, p99=1, startup=0.5, master=29),
    }
    cold = [
        ColdStart("example", "bytecode", 211.0, [1.2, 1.4], [0.9, 1.1]),
        ColdStart("example", "no bytecode", 199, [2.0], [2.0]),
    ]
    judged = {v.name: v for v in verdicts(stats, [("example-postgresql", "example on PostgreSQL")], cold)}

    pg_start = judged["startup to first 200, fastlaunch / bare gunicorn, example on PostgreSQL"]
    assert pg_start.value == pytest.approx(1.32) and pg_start.goal == "<= 1.2" and pg_start.met is False
    pg_rss = judged["master RSS, fastlaunch / bare gunicorn, example on PostgreSQL"]
    assert pg_rss.value == pytest.approx(2.0) and pg_rss.verdict == "MISSED"
    docs_rss = judged["master RSS, fastlaunch / bare gunicorn, FastAPI docs app"]
    assert docs_rss.value == pytest.approx(30 / 29) and docs_rss.met is True
    p99 = judged["p99 latency, fastlaunch / best peer, `/`"]
    assert p99.value == pytest.approx(20 / 34) and p99.goal == "<= 1.0" and "granian" in p99.detail.lower()
    assert judged["fastlaunch / best peer, `/async`"].goal == ">= 1.0"
    image = judged["image cold start, bytecode / no bytecode, example image"]
    assert image.value == pytest.approx(1.3 / 2.0) and image.met is True
    assert "211 MB" in image.detail and "199 MB" in image.detail and "1.00 s vs 2.00 s (0.50)" in image.detail
    assert not any("/ docs app `/async`" in name for name in judged)  # the retired ratio


def test_cpu_per_request_is_judged_against_granian() -> None:
    stats = {
        "fastlaunch/docs/nolog": figures("fastlaunch/docs/nolog", rps=1, p99=1, startup=1, master=1, cpu=113),
        "granian/docs/nolog": figures("granian/docs/nolog", rps=1, p99=1, startup=1, master=1, cpu=102),
    }
    judged = {v.name: v for v in verdicts(stats, [])}
    cpu = judged["server CPU per request, fastlaunch / granian, `/async`"]
    assert cpu.value == pytest.approx(113 / 102) and cpu.goal == "<= 1.0" and cpu.verdict == "MISSED"
    assert cpu.detail == "113 vs 102 µs"
    assert judged["server CPU per request, fastlaunch / granian, `/`"].met is False
    assert verdicts({}, [])[0].verdict == "no data"


def test_the_guard_is_judged_on_the_responses_it_served_not_on_its_503s() -> None:
    """wrk counts a 503 answered at once as a request: a guard that sheds half would pass for a faster server."""

    def wrk(requests: int, shed: int) -> WrkResult:
        return WrkResult(requests, 10_000_000, 0, 0, 0, shed, 0, 900, 1_500, 3_000, 9_000, 1_000.0)

    def sample(key: str, rep: int, requests: int, shed: int) -> Sample:
        return Sample(key, rep, [], results=dict.fromkeys(DOCS_ENDPOINTS, wrk(requests, shed)))

    guarded, plain = "fastlaunch-overload/docs/nolog", "fastlaunch/docs/nolog"
    samples = [sample(guarded, 0, 20_000, 12_000), sample(guarded, 1, 22_000, 12_000)]
    samples += [sample(plain, 0, 10_000, 0), sample(plain, 1, 10_000, 0)]
    stats = summarize_all(samples)
    assert stats[guarded].endpoints["/"].rps.median == pytest.approx(2_100)  # what wrk reports
    judged = {v.name: v for v in verdicts(stats, [])}
    ratio = judged["OVERLOAD=auto / off, fastlaunch, `/`"]
    assert ratio.value == pytest.approx(900 / 1_000) and ratio.met is False  # (8,000 or 10,000 in 10 s) / 10,000


def test_unmeasured_figures_say_so() -> None:
    judged = verdicts({}, [("example-sqlite", "example on SQLite")])
    assert {v.verdict for v in judged if v.goal} == {"no data"}
    assert any(v.name.startswith("image cold start") and v.detail == "not measured" for v in judged)


def _overload_server(name: str, goodput: list[float], p99: list[float], recovery: float | None) -> dict[str, object]:
    factors = [0.5, 1.0, 1.5, 2.0, 3.0, 0.5]
    steps = [{"factor": f, "goodput": g, "p99_ms": p} for f, g, p in zip(factors, goodput, p99, strict=True)]
    return {"name": name, "steps": steps, "recovery_s": recovery, "error": None}


def test_overload_ratios_against_the_best_peer() -> None:
    servers = [
        _overload_server("fastlaunch OVERLOAD=auto", [250, 500, 480, 470, 460, 250], [10, 20, 25, 28, 40, 10], 0.5),
        _overload_server("fastlaunch OVERLOAD=off", [250, 480, 200, 100, 50, 100], [10, 90, 900, 990, 990, 900], None),
        _overload_server("granian", [250, 490, 300, 200, 100, 250], [10, 50, 600, 900, 990, 20], 1.0),
        _overload_server("uvicorn --workers", [250, 490, 400, 235, 50, 250], [10, 50, 600, 900, 990, 20], 1.0),
    ]
    data = {"scenarios": [{"label": "CPU-bound `/cpu`", "servers": servers, "sweep": []}]}
    judged = {v.name: v for v in overload_verdicts(data)}
    assert judged["overload, CPU-bound `/cpu`: goodput at 2x / at 1x"].value == pytest.approx(0.94)
    assert judged["overload, CPU-bound `/cpu`: admitted p99 at 2x / at 0.5x"].value == pytest.approx(2.8)
    at_2x = judged["overload, CPU-bound `/cpu`: goodput at 2x / best peer"]
    assert at_2x.value == pytest.approx(2.0) and "uvicorn" in at_2x.detail  # fastlaunch OVERLOAD=off is no peer
    assert judged["overload, CPU-bound `/cpu`: goodput at 3x / best peer"].detail == "best peer: granian"
    recovered = judged["overload, CPU-bound `/cpu`: seconds to normal p99 after the spike"]
    assert recovered.met is True and recovered.detail == "fastlaunch, OVERLOAD=auto"


def test_overload_judged_per_app_and_never_recovering_is_a_miss() -> None:
    guarded = _overload_server("fastlaunch OVERLOAD=auto", [250, 500, 480, 470, 460, 250], [10] * 6, None)
    # The swept bound at its best value runs as a peer like any other.
    peer = _overload_server("uvicorn --limit-concurrency 8", [250, 500, 480, 500, 470, 250], [10] * 6, 0.25)
    data = {
        "scenarios": [
            {"label": "CPU-bound `/cpu`", "servers": [guarded], "sweep": []},
            {"label": "example service on postgresql", "servers": [guarded, peer], "sweep": []},
        ]
    }
    judged = {v.name: v for v in overload_verdicts(data)}
    assert len(judged) == 10
    never = judged["overload, example service on postgresql: seconds to normal p99 after the spike"]
    assert never.met is False and "not normal again" in never.detail
    at_2x = judged["overload, example service on postgresql: goodput at 2x / best peer"]
    assert at_2x.value == pytest.approx(0.94) and at_2x.detail == "best peer: uvicorn --limit-concurrency 8"
    assert judged["overload, CPU-bound `/cpu`: goodput at 2x / best peer"].verdict == "no data"


def test_watchdog_on_off_is_judged_on_every_app_served_both_ways() -> None:
    stats = {
        f"{server}/{app}/nolog": figures(f"{server}/{app}/nolog", rps=rps, p99=1, startup=1, master=1)
        for server, rps in (("fastlaunch", 960), ("fastlaunch-nowatchdog", 1000))
        for app in ("docs", "raw", "example-sqlite")
    }
    judged = {v.name: v for v in verdicts(stats, [("example-sqlite", "example on SQLite")])}
    watchdog = {name: v for name, v in judged.items() if name.startswith("watchdog on / off")}
    assert len(watchdog) == 3 * len(DOCS_ENDPOINTS)  # docs, raw and the example (each of their endpoints)
    assert "watchdog on / off, fastlaunch, `/async`" in watchdog  # the docs app's names, as before
    raw = watchdog["watchdog on / off, fastlaunch, `/`, raw ASGI app"]
    assert raw.value == pytest.approx(0.96) and raw.goal == ">= 0.97" and raw.met is False
    assert "watchdog on / off, fastlaunch, `/async`, example on SQLite" in watchdog


def test_instruction_counts_are_judged_against_the_bare_uvicorn_stack_and_watchdog_off() -> None:
    counts = {
        ("raw", "uvicorn"): 100_000.0,
        ("raw", "fastlaunch"): 74_000.0,
        ("raw", "fastlaunch+watchdog"): 74_500.0,
        ("docs", "uvicorn"): 490_000.0,
        ("docs", "fastlaunch"): 470_000.0,
        ("docs", "fastlaunch+watchdog"): 480_000.0,
        ("example-sqlite", "fastlaunch"): 1_000_000.0,
        ("example-sqlite", "fastlaunch+watchdog"): 1_002_000.0,
    }
    judged = {v.name: v for v in instruction_verdicts(counts, "counted in this run")}
    raw = judged["instructions per request, fastlaunch / bare Uvicorn stack, raw"]
    assert raw.value == pytest.approx(0.74) and raw.goal == "<= 0.75" and raw.met is True
    assert "74,000 vs 100,000" in raw.detail
    docs = judged["instructions per request, fastlaunch / bare Uvicorn stack, docs"]
    assert docs.goal == "<= 0.97" and docs.met is True
    assert judged["instructions per request, watchdog on / off, docs"].met is False  # 2 % more
    assert judged["instructions per request, watchdog on / off, example-sqlite"].met is True
    assert judged["instructions per request, fastlaunch / bare Uvicorn stack, example-sqlite"].verdict == "(context)"

    unmeasured = instruction_verdicts({}, "none saved")
    assert {v.verdict for v in unmeasured} == {"no data"} and len(unmeasured) == 4
