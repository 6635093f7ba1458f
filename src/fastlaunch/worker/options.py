"""What the launcher tells each worker beyond Gunicorn's own settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerOptions:
    """Set by the launcher on its Gunicorn application (``worker_options``) and inherited by every worker
    through the fork. A worker class used without fastlaunch's launcher gets these defaults."""

    root_path: str = ""
    access_log: bool = True
    # Where the first worker reports its RSS once it has loaded the app (None: nobody is waiting).
    boot_dir: str | None = None
    metrics: bool = False
    serve_metrics: bool = False  # /metrics on the app's port (METRICS_PORT unset)
    header_timeout: float = 10.0  # HEADER_TIMEOUT: seconds a client has to send a request's head
