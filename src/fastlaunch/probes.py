"""Liveness and readiness endpoints for any ASGI app built on Starlette (FastAPI included).

``/healthz`` answers 200 while the process serves requests: an orchestrator restarts the container when
it stops answering. ``/readyz`` runs the registered checks (each under its own timeout) and answers 503
naming the failing ones: the load balancer stops sending traffic, but nothing is restarted. Under
``fastlaunch run`` with SHUTDOWN_DELAY, ``/readyz`` also answers 503 from SIGTERM until the server stops.

Only Starlette's Request/JSONResponse are used, as they were in Starlette 0.22 (FastAPI 0.88).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fastlaunch.core.shutdown import shutting_down

log = logging.getLogger("fastlaunch.probes")

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class _Registered:
    check: Check
    timeout: float


class Probes:
    """Register readiness checks, then ``install(app)``::

        probes = Probes()
        probes.add_check("database", lambda: ping(engine), timeout=2)
        probes.install(app)

    A check fails when it raises, returns ``False`` or outlives its timeout.
    """

    def __init__(self, *, timeout: float = 2.0, healthz: str = "/healthz", readyz: str = "/readyz") -> None:
        self.timeout = timeout
        self.healthz_path = healthz
        self.readyz_path = readyz
        self._checks: dict[str, _Registered] = {}

    def add_check(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self._checks[name] = _Registered(check, self.timeout if timeout is None else timeout)

    def check(self, name: str, *, timeout: float | None = None) -> Callable[[Check], Check]:
        """Decorator form of :meth:`add_check`."""

        def register(func: Check) -> Check:
            self.add_check(name, func, timeout=timeout)
            return func

        return register

    async def _run(self, name: str, registered: _Registered) -> str | None:
        """None when the check passed, else the reason (no exception message: it may hold a DSN)."""
        try:
            result = await asyncio.wait_for(registered.check(), registered.timeout)
        except TimeoutError:
            reason = f"timed out after {registered.timeout:g}s"
        except Exception as exc:  # any failure means "not ready"
            reason = f"failed: {type(exc).__name__}"
        else:
            if result is not False:
                return None
            reason = "failed"
        log.warning("Readiness check %r %s", name, reason)
        return reason

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        if shutting_down():  # SHUTDOWN_DELAY: still serving, but load balancers must stop sending here
            return JSONResponse({"status": "shutting down"}, status_code=503)
        names = list(self._checks)
        reasons = await asyncio.gather(*(self._run(n, self._checks[n]) for n in names))
        checks = {n: reason or "ok" for n, reason in zip(names, reasons, strict=True)}
        failing = [n for n, reason in zip(names, reasons, strict=True) if reason]
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing, "checks": checks}, status_code=503)
        return JSONResponse({"status": "ready", "checks": checks})

    def install(self, app: Any) -> None:
        """Add both routes to a Starlette or FastAPI app, kept out of the OpenAPI schema."""
        for path, endpoint in ((self.healthz_path, self.healthz), (self.readyz_path, self.readyz)):
            app.add_route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
