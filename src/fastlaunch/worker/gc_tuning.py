"""The garbage collector in a worker: off while the app is imported, then tuned for serving requests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# CPython collects the young generation every 700 net new container objects. With 64 requests in flight
# about that many are alive at any moment, so a busy worker collected every ten requests or so. Measured
# here (docs app, 2 workers, wrk -c64): the collector took ~38 us of a ~400 us request at 700, ~14 us at 2000.
YOUNG_THRESHOLD = 2000


@contextmanager
def collector_paused() -> Iterator[None]:
    """Around the app's import."""
    # Importing the app makes many objects and little garbage (about 700 objects in cycles for FastAPI's docs
    # app), and the collector ran hundreds of times meanwhile: 5-10 % of the import. It is off during it; what
    # the import made is frozen afterwards (tune_gc), cycles included, and never walked again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def tune_gc(threshold_before_app: tuple[int, int, int]) -> None:
    """After the app has loaded: take its heap out of the collector's way. ``threshold_before_app`` is the
    collector's threshold before a post_fork hook or the app could set their own, which is then kept."""
    # The app's modules, routes and models live as long as the worker, yet every full collection walked
    # them all (60k+ objects, ~40 ms, every second or two under load). Frozen, it walks only what requests made.
    gc.freeze()
    if gc.get_threshold() == threshold_before_app:
        gc.set_threshold(max(YOUNG_THRESHOLD, gc.get_threshold()[0]), *gc.get_threshold()[1:])
