"""The overload scenario's recovery time, read from the last step's slices: the first slice from which every
slice's p99 is within twice the first step's, a shed or timed-out request counting as infinitely slow."""

from __future__ import annotations

import sys

from support import ROOT

sys.path.insert(0, str(ROOT))

from bench.openloop import Fate, Step  # noqa: E402
from bench.overload import SLICE, recovery, slice_p99s  # noqa: E402


def step(start: float, seconds: float, slices: list[tuple[int, float]]) -> Step:
    """A step of 100 requests per slice: in each, the given status and latency for the slowest one."""
    result = Step(rate=100 / SLICE, seconds=seconds)
    for n, (status, slowest) in enumerate(slices):
        for i in range(100):
            due = start + n * SLICE + i * SLICE / 100
            latency = slowest if i == 99 else 0.002
            result.fates.append(Fate(due, status if i == 99 else 200, latency, status == 0))
    return result


def test_recovery_is_read_from_the_last_slice_that_was_not_normal() -> None:
    first = step(0.0, 4 * SLICE, [(200, 0.002)] * 4)
    start = 10.0
    # A shed request, then a slow slice, then normal.
    last = step(start, 5 * SLICE, [(503, 0.001), (200, 0.002), (200, 0.002), (200, 0.002), (200, 0.002)])
    for fate in last.fates[100:103]:  # three slow answers in the second slice: its p99 is theirs
        last.fates[last.fates.index(fate)] = Fate(fate.due, 200, 0.05, False)
    normal, slices = slice_p99s(first, last, start)
    assert normal == 0.002
    assert slices[0] == float("inf") and slices[1] == 0.05 and slices[2:] == [0.002] * 3
    assert recovery(first, last, start) == 2 * SLICE
    # Normal from the first slice: 0; a timeout in the very last slice: never.
    assert recovery(first, step(start, 2 * SLICE, [(200, 0.003), (200, 0.003)]), start) == 0.0
    assert recovery(first, step(start, 2 * SLICE, [(200, 0.002), (0, 1.0)]), start) is None
