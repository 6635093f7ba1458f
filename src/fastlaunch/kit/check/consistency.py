"""What must agree across the files: probes and the app's routes, the grace period and fastlaunch's drain
time, FORWARDED_ALLOW_IPS and the proxy in front, the ports, WEB_CONCURRENCY and the CPU limit, the probes'
patience and STARTUP_TIMEOUT."""

from __future__ import annotations

import ipaddress
import math

from fastlaunch.kit.check.context import Context, Host
from fastlaunch.kit.check.report import Finding
from fastlaunch.kit.check.routes import Routes

# Platforms that restart (or stop routing to) a container whose probe fails; a compose health check only
# marks it unhealthy.
ACTING_PROBES = {"kubernetes": ("startup", "liveness"), "swarm": ("healthcheck",)}


def _probes(context: Context, routes: Routes) -> list[Finding]:
    found: list[Finding] = []
    for probe in context.deployment.probes:
        if probe.path is None or routes.serves(probe.path):
            continue
        known = ", ".join(sorted(p for p in routes.paths if p in ("/healthz", "/readyz", "/health", "/"))) or "none"
        found.append(
            Finding(
                "FC301",
                "error",
                f"the {probe.kind} probe asks for {probe.path}, which the app does not serve",
                context.deployment.name,
                [f"{len(routes.paths)} route(s) read in {routes.files} file(s); probes among them: {known}"],
                [str(probe.loc)],
                "Point the probe at a path the app serves (fastlaunch.probes serves /healthz and /readyz), or add the "
                "route. If the app serves it in a way not readable statically, pass --ignore FC301.",
            )
        )
    return found


def _grace(context: Context) -> list[Finding]:
    d, s = context.deployment, context.settings
    if d.grace is None or d.role != "web" or d.server != "fastlaunch":
        return []
    need = s.graceful_timeout + s.shutdown_delay
    if d.grace.value >= need:
        return []
    step = (
        f"{context.setting('shutdown_delay')} + {context.setting('graceful_timeout')} = {need}s "
        f"> {d.grace.value:g}s before SIGKILL ({d.grace.where})"
    )
    key = {"kubernetes": "terminationGracePeriodSeconds", "systemd": "TimeoutStopSec"}.get(
        d.platform, "stop_grace_period"
    )
    return [
        Finding(
            "FC302",
            "error",
            "requests still in flight at shutdown are killed: the grace period ends before fastlaunch's drain",
            d.name,
            [step],
            [x for x in (str(d.grace.loc or d.loc), context.where("graceful_timeout")) if x != "default"],
            f"Set {key} to {need + 5} or more, or lower GRACEFUL_TIMEOUT to "
            f"{max(1, int(d.grace.value) - s.shutdown_delay - 5)}.",
        )
    ]


def _networks(text: str) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], bool]:
    networks = []
    everything = False
    for item in (i.strip() for i in text.split(",")):
        if item == "*":
            everything = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue
    return networks, everything


def _forwarded(context: Context) -> list[Finding]:
    d = context.deployment
    if d.role != "web" or d.platform == "image":
        return []
    trusted = context.setting("forwarded_allow_ips")
    networks, everything = _networks(context.settings.forwarded_allow_ips)
    where = [context.where("forwarded_allow_ips")]
    if everything and (d.proxies or d.proxy_unknown):
        return [
            Finding(
                "FC303",
                "warning",
                "FORWARDED_ALLOW_IPS=* trusts X-Forwarded-For from anyone: the client address is the leftmost "
                "entry, which the client writes",
                d.name,
                [trusted],
                where,
                "List the proxy's addresses (or the pod network's ranges) instead of *.",
            )
        ]
    missing = []
    for proxy in d.proxies:
        try:
            address = ipaddress.ip_address(proxy.value)
        except ValueError:
            continue
        if not any(address in n for n in networks):
            missing.append(proxy)
    if missing:
        return [
            Finding(
                "FC303",
                "error",
                "FORWARDED_ALLOW_IPS does not trust the proxy in front: every request seems to come from the proxy, "
                "over plain HTTP",
                d.name,
                [f"proxy at {p.value} ({p.where}) is not in {trusted}" for p in missing],
                [*(p.where for p in missing), *where],
                f"Add {', '.join(p.value for p in missing)} to FORWARDED_ALLOW_IPS.",
            )
        ]
    if (
        d.proxy_unknown
        and not context.settings.is_set("forwarded_allow_ips")
        and "FORWARDED_ALLOW_IPS" not in context.env
    ):
        return [
            Finding(
                "FC303",
                "warning",
                "a proxy is in front but FORWARDED_ALLOW_IPS is the default 127.0.0.1: client addresses and "
                "https are lost",
                d.name,
                [d.proxy_unknown, trusted],
                [str(d.loc)],
                "Set FORWARDED_ALLOW_IPS to the proxy's address or network (the pod network's ranges on Kubernetes).",
            )
        ]
    return []


def _ports(context: Context) -> list[Finding]:
    d, address = context.deployment, context.settings.address
    if address.kind != "tcp":
        return []
    bound = address.port
    bind = context.setting("bind") if context.settings.bind else context.setting("port")
    served = {bound, context.settings.metrics_port}
    # A container may declare other ports (metrics, a debugger) as long as one is the app's; what a proxy or a
    # probe sends to must be served.
    wrong = [p for p in d.upstreams if p.value not in served]
    if d.ports and not any(p.value == bound for p in d.ports):
        wrong += d.ports
    wrong_probes = [p for p in d.probes if isinstance(p.port, int) and p.port not in served]
    if not wrong and not wrong_probes:
        return []
    steps = [f"the app listens on {bound}: {bind}"]
    steps += [f"{p.value} at {p.where}" for p in wrong]
    steps += [f"the {p.kind} probe goes to {p.port} ({p.loc})" for p in wrong_probes]
    return [
        Finding(
            "FC304",
            "error",
            "traffic or a probe goes to a port the app does not listen on",
            d.name,
            steps,
            [p.where for p in wrong] + [str(p.loc) for p in wrong_probes] + [context.where("port")],
            f"Use {bound} everywhere, or set PORT to the port the files use.",
        )
    ]


def _concurrency(context: Context) -> list[Finding]:
    d, s = context.deployment, context.settings
    if s.workers is None or d.cpu_limit is None:
        return []
    # fastlaunch's own formula: it starts this many on this limit when WEB_CONCURRENCY is unset.
    fits = max(int(s.workers_per_core * max(1, math.ceil(d.cpu_limit.value))), 2)
    if s.workers <= fits:
        return []
    return [
        Finding(
            "FC305",
            "warning",
            f"{s.workers} workers share {d.cpu_limit.value:g} CPU(s): they queue for the CPU, and the quota throttles "
            "the whole container",
            d.name,
            [
                f"{context.setting('workers')} > max({context.setting('workers_per_core')} x ceil(CPU limit "
                f"{d.cpu_limit.value:g}), 2) = {fits}"
            ],
            [d.cpu_limit.where, context.where("workers")],
            f"Unset WEB_CONCURRENCY (fastlaunch sizes to the CPU limit), set it to {fits}, or raise the CPU limit.",
        )
    ]


def _startup(context: Context, host: Host) -> list[Finding]:
    d, s = context.deployment, context.settings
    kinds = ACTING_PROBES.get(d.platform, ()) if d.server == "fastlaunch" else ()
    has_startup = any(p.kind == "startup" for p in d.probes)
    found: list[Finding] = []
    for probe in d.probes:
        if probe.kind not in kinds or probe.budget is None or (probe.kind == "liveness" and has_startup):
            continue
        need = float(s.startup_timeout)
        why = context.setting("startup_timeout")
        if host.import_seconds is not None and host.import_seconds > need:
            need, why = host.import_seconds, f"the app's import, measured: {host.import_seconds:.1f}s"
        if probe.budget >= need:
            continue
        found.append(
            Finding(
                "FC306",
                "warning" if host.import_seconds is None or probe.budget >= host.import_seconds else "error",
                f"the {probe.kind} probe gives up after {probe.budget:g}s, before the app may have started",
                d.name,
                [f"{probe.budget_text} = {probe.budget:g}s < {why}"],
                [str(probe.loc), context.where("startup_timeout")],
                "Give the probe as long as STARTUP_TIMEOUT (a startupProbe's failureThreshold x periodSeconds), or "
                "lower STARTUP_TIMEOUT to what the app needs.",
            )
        )
    return found


def check_consistency(context: Context, routes: Routes, host: Host) -> list[Finding]:
    return [
        *_probes(context, routes),
        *_grace(context),
        *_forwarded(context),
        *_ports(context),
        *_concurrency(context),
        *_startup(context, host),
    ]
