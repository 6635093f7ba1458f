"""What runs inside each worker: the worker class, the HTTP protocol, the observability middleware, the access
log, metrics and the app importer. Imports core and ``fastlaunch.request_id``; never Typer, Rich or the launcher.

``fastlaunch.worker.UvicornWorker`` is the public ``WORKER_CLASS`` path. It is loaded on first use, so the
modules here stay cheap to import on their own (the launcher's discovery reads ``AUTO_ATTRS`` from ``importer``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["UvicornWorker"]

if TYPE_CHECKING:
    from fastlaunch.worker.uvicorn_worker import UvicornWorker
else:

    def __getattr__(name: str) -> Any:
        if name == "UvicornWorker":
            from fastlaunch.worker.uvicorn_worker import UvicornWorker

            return UvicornWorker
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
