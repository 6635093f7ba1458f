"""The adaptive concurrency limit of OVERLOAD=auto (worker/admission.py): how many requests one worker lets into
the app at once, moved by the latency the app itself shows (gradient style, as Netflix's concurrency-limits).

What it sees is the *in-app* latency: from the app starting a request to its return, or to when its response
starts streaming (a long stream then holds no place once it has started answering). A pool the app waits on
(database connections, threads) shows there and nowhere else: the requests waiting for a connection have
already left the worker's queue.

Every ``WINDOW`` answers the window's mean in-app latency is set against the *baseline*, the app's latency
without a queue in it::

    gradient = clamp(TOLERANCE * baseline / mean, 0.5, 1)
    limit   <- limit * (1 - smoothing) + (limit * gradient + sqrt(limit)) * smoothing

so the limit shrinks while the app answers slower than ``TOLERANCE`` times its baseline (requests pile up behind
a pool) and grows by a small queue allowance (``sqrt(limit)``) while it does not (smoothing: a fifth of the
step when growing, half when shrinking). With latency proportional to the requests in the app past its knee,
this settles not far above the knee; and however slow the app gets, the gradient's floor of a half and the
allowance hold a limit that has shrunk at 4 (``4 / 2 + sqrt(4) = 4``), the size of a small pool. It does not
grow in a window that never came near it (the app-limited case: nothing showed that more would be served), so
after a quiet spell a spike meets a limit close to what the app last needed. Bounded by ``MIN_LIMIT`` and
``MAX_LIMIT`` (or MAX_CONCURRENCY when set).

The baseline is the lowest window mean seen, and nothing under load moves it up: under sustained overload every
window's latency is the limit's own doing (a full pool), so a baseline drifting towards the windows' mean (as it
once did, half a percent per window) relaxed the limit in seconds and the pool waits grew with it. Instead, a
baseline that no window has confirmed (a mean within ``REFRESH`` of it) for ``BASELINE_TTL`` seconds is measured
again, as BBR's PROBE_RTT does: for one short *probe* the limit lets in a quarter of itself (at least one), and
the mean latency of the requests that entered during the probe, which met no queue of the limit's making, becomes
the baseline, higher or lower. That is also how an app that really became slower (a slower database) is
relearnt, within ``BASELINE_TTL`` plus a probe, rather than shed for good; and a probe costs a few dozen
answers' worth of concurrency every few seconds, only while the baseline is not confirmed by the load itself.
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
REFRESH = 1.1  # a window mean within this of the baseline confirms it
BASELINE_TTL = 5.0  # seconds a baseline holds unconfirmed before it is measured again
PROBE_SHARE = 4  # a probe lets in a quarter of the limit: below the knee of a limit settled a few times above it
PROBE_SAMPLES = 8  # answers of requests that entered during the probe; or, for a slow app, PROBE_SECONDS
PROBE_SECONDS = 0.5


class GradientLimit:
    """The limit and its arithmetic; the caller counts the requests in the app and hands over each latency."""

    def __init__(self, *, max_limit: int = MAX_LIMIT, min_limit: int = MIN_LIMIT, initial: int = INITIAL_LIMIT) -> None:
        self.min_limit = min(min_limit, max_limit)
        self.max_limit = max_limit
        self.limit = float(max(self.min_limit, min(initial, max_limit)))
        self.allowed = int(self.limit)  # the whole requests the limit lets into the app at once
        self.baseline = 0.0  # seconds; 0 until the first probe has measured it
        self.confirmed = 0.0  # when a window last confirmed the baseline (the caller's clock)
        # The first baseline is a probe's too: a worker started in a spike must not learn the spike's latency.
        self.probing = True  # a request that enters while this is true is a probe's
        self.allowed = max(1, self.allowed // PROBE_SHARE)
        self._probe_began = -1.0  # at its first answer
        self.probes = 1  # begun so far
        self._total = 0.0
        self._count = 0
        self._peak = 0  # the most in the app at once during the window

    def sample(self, latency: float, in_app: int, now: float, probed: bool = False) -> bool:
        """One request's in-app latency, with ``in_app`` the requests in the app when it entered (itself
        included), ``now`` the caller's clock and ``probed`` whether it entered during a probe; whether the limit
        or the baseline changed (``allowed`` may have grown)."""
        if self.probing:
            if self._probe_began < 0.0:
                self._probe_began = now
            # Only the probe's own requests count: those that entered before it met the queue it is to avoid.
            if probed:
                self._total += latency
                self._count += 1
            if self._count >= PROBE_SAMPLES or now - self._probe_began >= PROBE_SECONDS:
                self._end_probe(now)
                return True
            return False
        self._total += latency
        self._count += 1
        if in_app > self._peak:
            self._peak = in_app
        if self._count >= WINDOW:
            self._update(self._total / self._count, self._peak, now)
            self._total, self._count, self._peak = 0.0, 0, 0
            return True
        return False

    def _update(self, mean: float, peak: int, now: float) -> None:
        if mean <= self.baseline * REFRESH:
            self.baseline = min(self.baseline, mean)
            self.confirmed = now
        elif now - self.confirmed >= BASELINE_TTL:
            self.probing = True
            self.probes += 1
            self._probe_began = -1.0
            self.allowed = max(1, int(self.limit) // PROBE_SHARE)
            return
        gradient = max(0.5, min(1.0, TOLERANCE * self.baseline / mean)) if mean > 0.0 else 1.0
        limit = self.limit
        target = limit * gradient + sqrt(limit)
        if target > limit and 2 * peak < limit:
            return  # app-limited: no evidence that more would be served
        smoothing = GROW_SMOOTHING if target > limit else SHRINK_SMOOTHING
        limit = limit * (1.0 - smoothing) + target * smoothing
        self.limit = max(float(self.min_limit), min(float(self.max_limit), limit))
        self.allowed = int(self.limit)

    def _end_probe(self, now: float) -> None:
        """The probe's mean is the baseline, higher or lower (none answered in time: the old one stands)."""
        if self._count:
            self.baseline = self._total / self._count
        self.confirmed = now
        self.probing = False
        self.allowed = int(self.limit)
        self._total, self._count, self._peak = 0.0, 0, 0
