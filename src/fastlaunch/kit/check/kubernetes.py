"""Kubernetes manifests: each Deployment or StatefulSet running the app (and each Job running its
migrations), with the ConfigMaps its containers read, the HorizontalPodAutoscaler that scales it, its rolling
update's surge, limits, probes, ports and grace period."""

from __future__ import annotations

import base64
import re
from typing import Any

from fastlaunch.kit.check.deployment import At, Deployment, Probe, cpus, memory, surge_of, whole
from fastlaunch.kit.check.dockerfile import APP_COMMAND
from fastlaunch.kit.check.located import Loc, Map

WORKLOADS = ("Deployment", "StatefulSet")
MIGRATION = re.compile(r"(?<![-\w])prestart\b|\balembic\b|\bmigrat")  # not run --no-prestart
OTHER_IMAGES = re.compile(r"^(?:.*/)?(postgres|redis|nginx|envoy|caddy|traefik|haproxy|memcached|busybox)\b")


def _command(container: Map) -> str:
    return " ".join(map(str, container.list("command") + container.list("args")))


def _container(spec: Map, image_runs_app: bool) -> Map | None:
    """The app's container in a pod: the one whose command is fastlaunch's (or a server's), else one without a
    command of its own (the image's, when the project's Dockerfile runs the app) that is no known sidecar. A
    worker running ``celery`` or a script is not the app."""
    containers = [c for c in spec.list("containers") if isinstance(c, Map)]
    for container in containers:
        if APP_COMMAND.search(_command(container)):
            return container
    if not image_runs_app:
        return None
    return next(
        (c for c in containers if not _command(c).strip() and not OTHER_IMAGES.match(str(c.get("image", "")))), None
    )


def _data(source: Map) -> dict[str, At[str]]:
    """A ConfigMap's or Secret's values (a Secret's ``data`` is base64)."""
    values = {str(k): At(str(v), source.map("stringData").loc(k)) for k, v in source.map("stringData").items()}
    data = source.map("data")
    for key, value in data.items():
        text = str(value)
        if source.get("kind") == "Secret":
            try:
                text = base64.b64decode(text).decode()
            except ValueError:
                continue
        values[str(key)] = At(text, data.loc(key))
    return values


def _env(container: Map, sources: dict[tuple[str, str], Map]) -> dict[str, At[str]]:
    env: dict[str, At[str]] = {}
    for source in container.list("envFrom"):
        if not isinstance(source, Map):
            continue
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if (found := sources.get((kind, str(source.map(ref).get("name"))))) is not None:
                prefix = str(source.get("prefix", ""))
                env |= {prefix + k: v for k, v in _data(found).items()}
    for item in container.list("env"):
        if isinstance(item, Map) and "value" in item:
            env[str(item.get("name"))] = At(str(item["value"]), item.loc("value"))
        elif isinstance(item, Map) and "valueFrom" in item:  # a value kept elsewhere: known to be set, not what
            env[str(item.get("name"))] = At("", item.loc("valueFrom"), "set from valueFrom")
    return env


def _probe(kind: str, probe: Map, ports: dict[str, int], loc: Loc) -> Probe:
    http = probe.map("httpGet")
    raw_port: Any = http.get("port", probe.map("tcpSocket").get("port"))
    port = ports.get(raw_port, raw_port) if isinstance(raw_port, str) else raw_port
    period, failures = whole(probe.get("periodSeconds"), 10), whole(probe.get("failureThreshold"), 3)
    delay = whole(probe.get("initialDelaySeconds"), 0)
    return Probe(
        kind,
        str(http["path"]) if "path" in http else None,
        int(port) if str(port).isdigit() else port if isinstance(port, str) else None,
        loc,
        budget=delay + period * failures,
        budget_text=f"initialDelaySeconds {delay} + periodSeconds {period} x failureThreshold {failures}",
    )


def _fill(d: Deployment, container: Map, pod: Map, sources: dict[tuple[str, str], Map]) -> None:
    d.env = _env(container, sources)
    if _command(container).strip():
        d.run_by(_command(container), container.loc("command" if "command" in container else "args"))
    limits = container.map("resources").map("limits")
    if (cpu := cpus(limits.get("cpu"))) is not None:
        d.cpu_limit = At(cpu, limits.loc("cpu"))
    if (size := memory(limits.get("memory"))) is not None:
        d.memory_limit = At(size, limits.loc("memory"))
    if str(pod.get("terminationGracePeriodSeconds", "")).isdigit():
        d.grace = At(float(pod["terminationGracePeriodSeconds"]), pod.loc("terminationGracePeriodSeconds"))
    else:
        d.grace = At(30.0, None, "Kubernetes' default 30s")
    named: dict[str, int] = {}
    for port in container.list("ports"):
        if isinstance(port, Map) and str(port.get("containerPort", "")).isdigit():
            d.ports.append(At(int(port["containerPort"]), port.loc("containerPort")))
            if port.get("name"):
                named[str(port["name"])] = int(port["containerPort"])
    for kind in ("startup", "readiness", "liveness"):
        if isinstance(probe := container.get(f"{kind}Probe"), Map):
            d.probes.append(_probe(kind, probe, named, container.loc(f"{kind}Probe")))


def read_kubernetes(documents: list[Map], *, image_runs_app: bool) -> list[Deployment]:
    """Deployments for the workloads in ``documents`` (every manifest of the project, read together)."""
    by_kind: dict[str, list[Map]] = {}
    for doc in documents:
        for item in doc.list("items") if doc.get("kind") == "List" else [doc]:  # kubectl get -o yaml writes Lists
            if isinstance(item, Map):
                by_kind.setdefault(str(item.get("kind")), []).append(item)
    sources = {
        (kind, str(c.map("metadata").get("name"))): c for kind in ("ConfigMap", "Secret") for c in by_kind.get(kind, [])
    }
    autoscalers = {
        str(h.map("spec").map("scaleTargetRef").get("name")): h for h in by_kind.get("HorizontalPodAutoscaler", [])
    }
    ingress = bool(by_kind.get("Ingress"))
    found: list[Deployment] = []
    for kind in (*WORKLOADS, "Job", "Service"):
        for doc in by_kind.get(kind, []):
            knative = str(doc.get("apiVersion")).startswith("serving.knative.dev")
            if kind == "Service" and not knative:
                continue
            name = str(doc.map("metadata").get("name"))
            spec = doc.map("spec")
            pod = spec.map("template").map("spec")
            if kind == "Job":
                jobs = (c for c in pod.list("containers") if isinstance(c, Map) and MIGRATION.search(_command(c)))
                container = next(jobs, None)
            else:
                container = _container(pod, image_runs_app)
            if container is None:
                continue
            d = Deployment(
                f"{doc.loc()} {kind} {name}", "kubernetes", doc.loc(), role="migrate" if kind == "Job" else "web"
            )
            _fill(d, container, pod, sources)
            if knative:  # Cloud Run: it scales on its own, and stops only idle instances (no grace to check)
                annotations = spec.map("template").map("metadata").map("annotations")
                key = "autoscaling.knative.dev/maxScale"
                scale = str(annotations.get(key, ""))
                d.replicas = (
                    At(int(scale), annotations.loc(key))
                    if scale.isdigit()
                    else At(100, None, "Cloud Run's default 100")
                )
                d.grace = None
                d.ports = d.ports or [At(8080, None, "Cloud Run's default 8080")]
                # Cloud Run sets PORT to the container port itself (and refuses a PORT of the file's).
                d.env["PORT"] = At(str(d.ports[0].value), d.ports[0].loc, "set by Cloud Run to the container port")
                d.env.pop("BIND", None)
            if kind in WORKLOADS:
                replicas = whole(spec.get("replicas"), 1)
                d.replicas = At(replicas, spec.loc("replicas")) if "replicas" in spec else At(1, None, "default 1")
                if (hpa := autoscalers.get(name)) is not None:
                    top = whole(hpa.map("spec").get("maxReplicas"), replicas)
                    d.replicas = At(max(top, replicas), hpa.map("spec").loc("maxReplicas"), "maxReplicas")
                strategy = spec.map("strategy" if kind == "Deployment" else "updateStrategy")
                if kind == "Deployment" and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    rolling = strategy.map("rollingUpdate")
                    surge = surge_of(rolling.get("maxSurge", "25%"), d.replicas.value)
                    d.surge = (
                        At(surge, rolling.loc("maxSurge"))
                        if "maxSurge" in rolling
                        else At(surge, None, "maxSurge default 25%")
                    )
                if ingress:
                    d.proxy_unknown = "an Ingress routes to it; the controller's pods reach it from the pod network"
            found.append(d)
    return found
