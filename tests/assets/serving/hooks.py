"""A GUNICORN_CONF file that sets nothing but hooks: fastlaunch applies the file on top of its own settings, so
any setting here would hide the one under test. Each hook acts only when the test names a path for it."""

import json
import os

# The Gunicorn settings whose effective values when_ready reports.
REPORTED = (
    "bind",
    "workers",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_class_str",
    "worker_tmp_dir",
    "errorlog",
)


def _write(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # the test never reads half a file


def when_ready(server):
    """The master's effective configuration, once it listens (CFG_DUMP: where to write it as JSON)."""
    path = os.environ.get("CFG_DUMP")
    if path:
        values = {name: getattr(server.cfg, name) for name in REPORTED}
        loaded = server.cfg.worker_class
        values["worker_class"] = f"{loaded.__module__}.{loaded.__qualname__}"
        _write(path, json.dumps(values))


def post_worker_init(worker):
    """The request limit Gunicorn drew for this worker (WORKER_LIMITS_DIR: a file per worker PID)."""
    directory = os.environ.get("WORKER_LIMITS_DIR")
    if directory:
        _write(os.path.join(directory, str(worker.pid)), str(worker.max_requests))
