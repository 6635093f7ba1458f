"""What the launcher tells each worker beyond Gunicorn's own settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerOptions:
    """Set by the launcher on its Gunicorn application (``worker_options``) and inherited by every worker
    through the fork. A worker class used without fastlaunch's launcher gets these defaults."""

    root_path: str = ""
    access_log: bool = True
    metrics: bool = False
    serve_metrics: bool = False  # /metrics on the app's port (METRICS_PORT unset)
    request_timeout: float = 0.0  # REQUEST_TIMEOUT; 0: off
    loop_block_warn: float = 0.0  # LOOP_BLOCK_WARN; 0: no watchdog
    overload: bool = False  # OVERLOAD=auto: shed requests queued too long (worker/admission.py)
    max_concurrency: int = 0  # MAX_CONCURRENCY per worker; 0: no limit
    healthcheck_path: str | None = None  # HEALTHCHECK_PATH: never shed, like /healthz and /readyz
    # MAX_WORKER_MEMORY: a size, or (auto) the share the master writes once the plan is final.
    max_worker_memory: int | None = None
    max_worker_memory_auto: bool = False
    preload: bool = False  # the app came from the master: its pages are shared, so the boot report counts USS
    header_timeout: float = 10.0  # HEADER_TIMEOUT: seconds a client has to send a request's head
    body_timeout: float = 20.0  # BODY_TIMEOUT: seconds a request's body may take, from its head
    body_min_rate: int = 500  # BODY_MIN_RATE: bytes/s that push the body's deadline back by a second
    # Uvicorn's WebSocket limits: WS_MAX_SIZE, WS_PING_INTERVAL and WS_PING_TIMEOUT (0: off), WS_PER_MESSAGE_DEFLATE.
    ws_max_size: int = 16 * 2**20
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    ws_per_message_deflate: bool = True
    # Under an unprivileged WORKER_USER: the pipe on which a worker that failed to boot on a denied file says which.
    denied_fd: int | None = None
