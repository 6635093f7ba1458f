"""A guard against fork loops: workers replaced for the same reason again and again in a short time (a memory cap
a worker passes as soon as it boots, a crash at every start) get their replacements spaced out, the delay
doubling while it repeats, with one log line when it begins.

Gunicorn replaces an exiting worker at once, however often: a cap below a worker's boot size made 37
replacements in 15 s, each one importing the app again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("fastlaunch")

# Replacements that are the point (MAX_REQUESTS) or asked for (reload, scale-down) are never held back.
PLANNED = ("max_requests", "stopped")
REPEATS = 5  # replacements for one reason ...
WINDOW = 30.0  # ... within this many seconds start the backoff
FIRST_DELAY = 1.0
MOST_DELAY = 60.0


class RestartBackoff:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._delay = 0.0  # the current delay between replacements; 0: none
        self._reason = ""
        self._next = 0.0  # no replacement before this time

    def replaced(self, reason: str) -> None:
        """A worker that left for ``reason`` is about to be replaced."""
        if reason in PLANNED:
            return
        now = self._clock()
        recent = self._recent.setdefault(reason, deque())
        recent.append(now)
        while recent and now - recent[0] > WINDOW:
            recent.popleft()
        if len(recent) < REPEATS:
            if self._delay and reason == self._reason and now - recent[0] > WINDOW / 2:
                self._delay = 0.0  # it stopped repeating
            return
        if not self._delay or reason != self._reason:
            self._delay, self._reason = FIRST_DELAY, reason
            log.warning(
                "Workers were replaced %d times in %.0fs for the same reason (%s): replacements now wait %gs, "
                "doubling up to %gs while this repeats, rather than fork in a loop. Fix the cause (see the lines "
                "above)",
                len(recent),
                now - recent[0],
                reason,
                self._delay,
                MOST_DELAY,
            )
        else:
            self._delay = min(self._delay * 2, MOST_DELAY)
        self._next = now + self._delay

    def waiting(self) -> bool:
        """Whether a replacement must wait now."""
        return bool(self._delay) and self._clock() < self._next
