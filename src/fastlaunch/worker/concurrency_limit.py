"""The adaptive concurrency limit of OVERLOAD=auto (worker/admission.py): how many requests one worker lets into
the app at once, moved by the latency the app itself shows (gradient style, as Netflix's concurrency-limits).

What it sees is the *in-app* latency: from the app starting a request to its response head (or its return,
whichever comes first; a long stream then holds no place once it has started answering). A pool the app waits
on (database connections, threads) shows there and nowhere else: the requests waiting for a connection have
already left the worker's queue.

Every ``WINDOW`` answers the window's mean in-app latency is set against the *baseline*, the lowest window mean
seen (which drifts up slowly, so that an app that really became slower is relearnt, in about 200 windows: 10 s
at 700 requests/s per worker, rather than shed forever)::

    gradient = clamp(TOLERANCE * baseline / mean, 0.5, 1)
    limit   <- limit * (1 - smoothing) + (limit * gradient + sqrt(limit)) * smoothing

so the limit shrinks while the app answers slower than ``TOLERANCE`` times its baseline (requests pile up behind
a pool) and grows by a small queue allowance (``sqrt(limit)``) while it does not (smoothing: a fifth of the
step when growing, half when shrinking). It does not grow in a window that never came near it (the app-limited
case: nothing showed that more would be served), so after a quiet spell a spike meets a limit close to what the
app last needed. Bounded by ``MIN_LIMIT`` and ``MAX_LIMIT`` (or
MAX_CONCURRENCY when set).
"""

from __future__ import annotations

from math import sqrt

MIN_LIMIT = 2
MAX_LIMIT = 500
INITIAL_LIMIT = 16
WINDOW = 32  # answers per update: a few tens of milliseconds per worker at the rates it matters
TOLERANCE = 1.5  # in-app latency up to this times the baseline is not taken as a queue in the app
# The share of each update's new limit taken at once: growing is cautious, shrinking is not (a pool filling up
# fills up fast).
GROW_SMOOTHING, SHRINK_SMOOTHING = 0.2, 0.5
BASELINE_DRIFT = 0.005  # per window, towards the window's mean: mostly relearnt in 200 windows


class GradientLimit:
    """The limit and its arithmetic; the caller counts the requests in the app and hands over each latency."""

    def __init__(self, *, max_limit: int = MAX_LIMIT, min_limit: int = MIN_LIMIT, initial: int = INITIAL_LIMIT) -> None:
        self.min_limit = min(min_limit, max_limit)
        self.max_limit = max_limit
        self.limit = float(max(self.min_limit, min(initial, max_limit)))
        self.allowed = int(self.limit)  # the whole requests the limit lets into the app at once
        self.baseline = 0.0  # seconds; 0 until a first window
        self._total = 0.0
        self._count = 0
        self._peak = 0  # the most in the app at once during the window

    def sample(self, latency: float, in_app: int) -> bool:
        """One request's in-app latency, with ``in_app`` the requests in the app when it entered (itself included);
        whether it ended a window (the limit and the baseline were updated)."""
        self._total += latency
        self._count += 1
        if in_app > self._peak:
            self._peak = in_app
        if self._count >= WINDOW:
            self._update(self._total / self._count, self._peak)
            self._total, self._count, self._peak = 0.0, 0, 0
            return True
        return False

    def _update(self, mean: float, peak: int) -> None:
        if self.baseline <= 0.0 or mean < self.baseline:
            self.baseline = mean
        else:
            self.baseline += (mean - self.baseline) * BASELINE_DRIFT
        gradient = max(0.5, min(1.0, TOLERANCE * self.baseline / mean)) if mean > 0.0 else 1.0
        limit = self.limit
        target = limit * gradient + sqrt(limit)
        if target > limit and 2 * peak < limit:
            return  # app-limited: no evidence that more would be served
        smoothing = GROW_SMOOTHING if target > limit else SHRINK_SMOOTHING
        limit = limit * (1.0 - smoothing) + target * smoothing
        self.limit = max(float(self.min_limit), min(float(self.max_limit), limit))
        self.allowed = int(self.limit)
