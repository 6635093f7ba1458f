"""Prometheus metrics recorded in each worker and read across all of them (prometheus_client's
multiprocess mode: every process writes its own file in PROMETHEUS_MULTIPROC_DIR; a scrape merges them).

prometheus_client is imported only inside functions: it decides at import time whether it is in
multiprocess mode, and the launcher sets PROMETHEUS_MULTIPROC_DIR first.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ARCHIVE_ENV = "FASTLAUNCH_METRICS_ARCHIVE"  # the master's directory of dead workers' totals (read-only here)
UNMATCHED = "unmatched"  # requests no route matched (404s): one label however many paths are probed
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


def route_template(app: Any, scope: dict[str, Any]) -> str:
    """The matched route's path template (``/items/{item_id}``), from what the framework's router left in the
    scope: bounded cardinality whatever paths clients send. Starlette and FastAPI leave the route object
    (behind a ``Mount``, the innermost one, whose template lacks the mount's prefix); Litestar and others a
    ``path_template`` string."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        return _mount_prefix(app, scope) + template
    template = scope.get("path_template")
    if isinstance(template, str):
        return template
    endpoint = scope.get("endpoint")  # older Starlette sets only the endpoint
    if endpoint is not None:
        for candidate in getattr(app, "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint and isinstance(
                getattr(candidate, "path_format", None), str
            ):
                return str(candidate.path_format)
    return UNMATCHED


def _mount_prefix(app: Any, scope: dict[str, Any]) -> str:
    """The template of the Mounts the request went through. A Mount moves the matched prefix from the path to
    ``root_path``, keeping the original in ``app_root_path``."""
    base = scope.get("app_root_path")
    root_path = scope.get("root_path", "")
    if not isinstance(base, str) or not isinstance(root_path, str) or len(root_path) <= len(base):
        return ""
    prefix = root_path[len(base) :]
    templates = _MOUNTS.get(id(app))
    if templates is None:
        templates = _MOUNTS[id(app)] = _mount_templates(getattr(app, "routes", ()), "")
    # Matched in order, as the router did; a prefix no Mount template matches (a mount inside a mounted
    # app that is not a router) is left out rather than labelled with client-chosen text.
    return next((template for regex, template in templates if regex.fullmatch(prefix)), "")


_MOUNTS: dict[int, list[tuple[re.Pattern[str], str]]] = {}
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def _mount_templates(routes: Any, outer: str, depth: int = 0) -> list[tuple[re.Pattern[str], str]]:
    found: list[tuple[re.Pattern[str], str]] = []
    for route in routes if depth < 8 else ():
        inner = getattr(route, "routes", None)
        path = getattr(route, "path", None)  # a Mount's own prefix (its path_format adds "/{path}")
        if inner is None or not isinstance(path, str) or not hasattr(route, "path_regex"):
            continue  # not a Mount (a Host has no path template)
        raw = outer + path.rstrip("/")  # with convertors ({rest:path}), which the regex needs
        found.extend(_mount_templates(inner, raw, depth + 1))
        found.append((_template_regex(raw), _PARAM.sub(lambda m: "{" + m.group(1) + "}", raw)))
    return found


def _template_regex(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for param in _PARAM.finditer(template):
        parts.append(re.escape(template[last : param.start()]))
        parts.append(".+" if param.group(2) == "path" else "[^/]+")
        last = param.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


class RequestMetrics:
    """Requests by method, route and status; latency by method and route; requests in progress."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        # registry=None: values go to this process's file only; the scrape reads the files.
        self.requests = Counter(
            "http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=None
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to answer a request.", ["method", "route"], registry=None
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "Requests being answered.",
            ["method"],
            multiprocess_mode="livesum",
            registry=None,
        )
        self._children: dict[tuple[str, ...], Any] = {}  # labels() takes a lock and builds a key: cache it

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    @staticmethod
    def method(scope: dict[str, Any]) -> str:
        method: str = scope.get("method", "")
        return method if method in METHODS else "other"  # clients choose the method: bound it too

    def started(self, method: str) -> None:
        self._child(self.in_progress, method).inc()

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.in_progress, method).dec()
        self._child(self.requests, method, route, str(status)).inc()
        self._child(self.latency, method, route).observe(seconds)


class MergedCollector:
    """Every process's files (PROMETHEUS_MULTIPROC_DIR) and the master's archive of dead workers' totals.

    The files are read while their processes write them, without a lock: a worker's file can be caught between
    its creation and its first header (empty), or with a header naming bytes not yet seen. Each file is read
    on its own, a few times if need be, and one that stays unreadable is left out of this scrape (logged once)
    rather than failing it: the others' counts are all there."""

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        for attempt in range(3):
            files = [
                f
                for env in (MULTIPROC_ENV, ARCHIVE_ENV)
                for f in glob.glob(os.path.join(os.environ.get(env) or "-", "*.db"))
            ]
            try:
                merged = _read_files(files, missing_ok=attempt == 2)
            except FileNotFoundError:  # a dead worker's file, folded into the archive since the listing
                continue
            return MultiProcessCollector._accumulate_metrics(merged, True)  # type: ignore[no-untyped-call]
        return []


_READS = 4  # a file caught mid-initialisation is whole a few microseconds later
_skipped: set[str] = set()


def _read_files(files: list[str], *, missing_ok: bool) -> dict[str, Any]:
    """prometheus_client's metric families of ``files``, merged; a file is taken whole or not at all."""
    merged: dict[str, Any] = {}
    for path in files:
        for metric_name, metric in _read_file(path, missing_ok=missing_ok).items():
            if metric_name in merged:
                merged[metric_name].samples.extend(metric.samples)
            else:
                merged[metric_name] = metric
    return merged


def _read_file(path: str, *, missing_ok: bool) -> dict[str, Any]:
    from prometheus_client.multiprocess import MultiProcessCollector

    error: Exception | None = None
    for attempt in range(_READS):
        try:
            return MultiProcessCollector._read_metrics([path])  # type: ignore[no-untyped-call, no-any-return]
        except FileNotFoundError:
            if missing_ok:
                return {}
            raise
        except Exception as exc:  # struct.error, a JSON, UTF-8 or bounds error: not whole yet, or not ours
            error = exc
            if attempt:
                time.sleep(0.001 * attempt)
    if path not in _skipped:
        _skipped.add(path)
        logging.getLogger("fastlaunch").warning(
            "METRICS: %s cannot be read (%s: %s); scrapes leave it out while it stays so (shown once)",
            path,
            type(error).__name__,
            error,
        )
    return {}


def registry() -> Any:
    from prometheus_client import CollectorRegistry

    merged = CollectorRegistry()
    merged.register(MergedCollector())
    return merged


def render() -> tuple[bytes, str]:
    """The merged metrics of every process, in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry()), CONTENT_TYPE_LATEST
