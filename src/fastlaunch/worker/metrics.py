"""Prometheus metrics recorded in each worker and read across all of them (prometheus_client's
multiprocess mode: every process writes its own file in PROMETHEUS_MULTIPROC_DIR; a scrape merges them).

prometheus_client is imported only inside functions: it decides at import time whether it is in
multiprocess mode, and the launcher sets PROMETHEUS_MULTIPROC_DIR first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UNMATCHED = "unmatched"  # requests no route matched (404s): one label however many paths are probed
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


def route_template(app: Any, scope: dict[str, Any]) -> str:
    """The matched route's path template (``/items/{item_id}``), from what Starlette's router left in the
    scope: bounded cardinality whatever paths clients send."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
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


def render() -> tuple[bytes, str]:
    """The merged metrics of every process, in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_restarts() -> Callable[[], None]:
    """Counts workers that exited while the server kept running (crash, kill, MAX_REQUESTS, reload)."""
    from prometheus_client import Counter

    counter = Counter("fastlaunch_worker_restarts", "Workers that exited and were replaced.", registry=None)
    return counter.inc
