"""When the service is really ready, and how it stops without failing a request.

``StartupWatch``: every worker reports (over the channel, ``core/channel.py``) once the app's lifespan
startup has finished and it accepts connections; Gunicorn's "Listening at" comes long before that with a
slow startup. The master logs "N workers serving; startup took X s" when all of them do, and warns once if
STARTUP_TIMEOUT passes first.

``ShutdownDelay``: on SIGTERM the master raises the shared shutting-down flag (``/readyz`` answers 503 in
every worker) and keeps everything serving for SHUTDOWN_DELAY seconds, then stops as Gunicorn does (workers
drain within GRACEFUL_TIMEOUT). Only the master's SIGTERM waits: a reload or a worker's restart does not.
"""

from __future__ import annotations

from collections.abc import Collection
from time import monotonic
from typing import Any

from fastlaunch.core import shutdown
from fastlaunch.core.channel import slot_of


class StartupWatch:
    def __init__(self, timeout: float, log: Any) -> None:
        self.timeout = timeout
        self.log = log
        self.started = monotonic()
        self.done = False
        self._warned = False

    def poll(self, workers: Collection[Any], wanted: int) -> None:
        """Called from the master's loop; ``workers`` are the live Gunicorn workers, ``wanted`` their planned
        count."""
        if self.done:  # later workers (restarts, reloads) report too: nobody reads it any more
            return
        serving = [worker for worker in workers if (slot := slot_of(worker)) is not None and slot.serving()]
        elapsed = monotonic() - self.started
        if len(serving) >= wanted:
            self.done = True
            self.log.info("%d worker%s serving; startup took %.1fs", wanted, "" if wanted == 1 else "s", elapsed)
        elif self.timeout and elapsed > self.timeout and not self._warned:
            self._warned = True
            self.log.warning(
                "Startup has taken more than STARTUP_TIMEOUT=%gs: %d of %d workers serving (the app's import "
                "or lifespan startup is still running). A Kubernetes startupProbe sized from STARTUP_TIMEOUT "
                "restarts the container now; raise STARTUP_TIMEOUT if this startup is expected.",
                self.timeout,
                len(serving),
                wanted,
            )

    @property
    def poll_interval(self) -> float:
        return 1.0 if self.done else 0.1


class ShutdownDelay:
    def __init__(self, seconds: float, log: Any) -> None:
        self.seconds = seconds
        self.log = log
        self.until: float | None = None

    def begin(self) -> bool:
        """On SIGTERM: True when the stop is deferred (the first SIGTERM, with a delay set)."""
        if not self.seconds or self.until is not None:
            return False
        shutdown.begin()
        self.until = monotonic() + self.seconds
        self.log.info(
            "SIGTERM: serving for SHUTDOWN_DELAY=%gs more with /readyz answering 503, then stopping gracefully "
            "(another SIGTERM stops now)",
            self.seconds,
        )
        return True

    def due(self) -> bool:
        return self.until is not None and monotonic() >= self.until

    def remaining(self, default: float) -> float:
        return default if self.until is None else max(0.0, min(default, self.until - monotonic()))
