"""The middleware a worker wraps around the app, outermost first: request id, access log and metrics
(middleware.py), then admission (OVERLOAD, MAX_CONCURRENCY; admission.py), then REQUEST_TIMEOUT (deadline.py)."""

from __future__ import annotations

from typing import Any

from fastlaunch.worker.access_log import AccessLog
from fastlaunch.worker.admission import PROBES, AdmissionControl, ShedCounter
from fastlaunch.worker.deadline import RequestDeadline, TimeoutCounter
from fastlaunch.worker.metrics import RequestMetrics
from fastlaunch.worker.middleware import ObservabilityMiddleware
from fastlaunch.worker.options import WorkerOptions
from fastlaunch.worker.threads import hold_threads_until_they_return


def app_stack(app: Any, options: WorkerOptions, forwarded_allow_ips: str | list[str] | None) -> ObservabilityMiddleware:
    """The app behind fastlaunch's middleware; its ``access_log`` (None with ACCESS_LOG empty) is the worker's
    to close when it stops."""
    if options.request_timeout:
        counter = TimeoutCounter() if options.metrics else None
        app = RequestDeadline(app, options.request_timeout, counter=counter)
        hold_threads_until_they_return()  # a cut sync handler's thread must not free its place early
    if options.overload or options.max_concurrency:
        app = AdmissionControl(
            app,
            adaptive=options.overload,
            max_concurrency=options.max_concurrency,
            probes=PROBES | {options.healthcheck_path} if options.healthcheck_path else PROBES,
            forwarded_allow_ips=forwarded_allow_ips,
            counter=ShedCounter() if options.metrics else None,
        )
    return ObservabilityMiddleware(
        app,
        access_log=AccessLog() if options.access_log else None,
        metrics=RequestMetrics() if options.metrics else None,
        serve_metrics=options.serve_metrics,
        forwarded_allow_ips=forwarded_allow_ips,
    )
