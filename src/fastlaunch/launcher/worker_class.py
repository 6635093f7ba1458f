"""The Gunicorn worker class that serves: fastlaunch's own unless WORKER_CLASS names another."""

from __future__ import annotations

from fastlaunch.core.settings import Settings

FASTLAUNCH_WORKER = "fastlaunch.worker.UvicornWorker"
# The deprecated image's WORKER_CLASS values: Uvicorn moved its Gunicorn workers to the uvicorn-worker package
# (uvicorn.workers is deprecated). The default one becomes fastlaunch's worker, a subclass of it; the h11 one
# is uvicorn-worker's own (Uvicorn's pure-Python HTTP parser), which keeps its own protocol and logging.
OLD_WORKER_CLASSES = {
    "uvicorn.workers.UvicornWorker": FASTLAUNCH_WORKER,
    "uvicorn.workers.UvicornH11Worker": "uvicorn_worker.UvicornH11Worker",
}


def worker_class(settings: Settings) -> str:
    """What Gunicorn loads: WORKER_CLASS (an old image's path mapped to its successor), else fastlaunch's worker."""
    spec = settings.worker_class or FASTLAUNCH_WORKER
    return OLD_WORKER_CLASSES.get(spec, spec)
