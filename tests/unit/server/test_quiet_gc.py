"""``quiet_gc``: what ``stemtrace server`` does to the collector before it ingests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stemtrace.server.tuning import GC_YOUNG_THRESHOLD, quiet_gc


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_frozen_and_young_collections_rarer(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    quiet_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 1000  # the interpreter's and the imports' objects


def test_a_higher_threshold_or_disabled_collection_is_kept(collector: None) -> None:
    for given in ((50_000, 5, 5), (0, 10, 10)):
        gc.set_threshold(*given)
        quiet_gc()
        assert gc.get_threshold() == given
