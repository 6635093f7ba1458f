"""fastlaunch.worker.gc_tuning: the collector off while the app is imported, then frozen and tuned; an app's own
threshold kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fastlaunch.worker.gc_tuning import YOUNG_THRESHOLD, collector_paused, tune_gc


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_during_the_import_and_restored_after(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    with pytest.raises(ImportError), collector_paused():
        assert not gc.isenabled()
        raise ImportError("the app failed to import")
    assert gc.isenabled() is enabled


def test_the_apps_heap_is_frozen_and_the_young_threshold_raised() -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(gc.get_threshold())
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_a_threshold_the_app_chose_is_kept() -> None:
    before = (700, 10, 10)
    gc.set_threshold(500, 5, 5)  # set by the app while it loaded
    tune_gc(before)
    assert gc.get_threshold() == (500, 5, 5)
