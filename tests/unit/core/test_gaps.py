"""The gap tracker: seen seq ranges, their holes, when a hole becomes a loss, and its cause."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from stemtrace.core.gaps import (
    OVERFLOW,
    TRIMMED,
    UNKNOWN,
    Gap,
    SeqRange,
    causes,
    gaps,
    merge,
    overdue,
    ranges_of,
)


def _seqs(ranges: list[SeqRange]) -> set[int]:
    return {s for r in ranges for s in range(r.lo, r.hi + 1)}


def _missing(ranges: list[SeqRange]) -> set[int]:
    return {s for g in gaps(ranges) for s in range(g.first, g.last + 1)}


def test_runs_holes_and_their_windows() -> None:
    seen = ranges_of([(5, 10.5), (3, 10.3), (4, 10.4), (9, 10.9), (3, 99.0)], now=100.0)
    assert seen == [SeqRange(3, 5, 100.0, 100.0, 10.3, 10.5), SeqRange(9, 9, 100.0, 100.0, 10.9, 10.9)]
    assert gaps(merge(seen)) == [Gap(1, 2, 100.0, None, 10.3), Gap(6, 8, 100.0, 10.5, 10.9)]
    assert [g.count for g in gaps(merge(seen))] == [2, 3]


def test_a_gap_becomes_a_loss_only_after_the_grace_period_and_filling_part_restarts_it() -> None:
    first = ranges_of([(s, float(s)) for s in range(1, 101)], now=0.0)
    later = ranges_of([(s, float(s)) for s in range(201, 301)], now=10.0)
    found = gaps(merge(first + later))
    assert found == [Gap(101, 200, 10.0, 100.0, 201.0)]
    assert overdue(found, now=69.0, grace=60.0) == []
    assert overdue(found, now=70.0, grace=60.0) == found
    # Part of the hole arrives late (another replica's batch): what is left starts over.
    part = ranges_of([(s, float(s)) for s in range(101, 151)], now=50.0)
    rest = gaps(merge(first + later + part))
    assert rest == [Gap(151, 200, 50.0, 150.0, 201.0)]
    assert overdue(rest, now=70.0, grace=60.0) == []
    # Recording the loss closes the hole for good: it is reported once.
    closed = merge([*first, *later, *part, rest[0].fill(now=110.0)])
    assert gaps(closed) == [] and len(closed) == 1


def test_causes_split_a_loss_between_overflow_reported_and_the_rest() -> None:
    assert causes(100, 30, library_reported=True) == [(OVERFLOW, 30), (TRIMMED, 70)]
    assert causes(100, 500, library_reported=True) == [(OVERFLOW, 100)]
    assert causes(100, 0, library_reported=False) == [(UNKNOWN, 100)]
    assert causes(5, -3, library_reported=True) == [(TRIMMED, 5)]


seq_sets = st.sets(st.integers(1, 300), max_size=200)


@given(seen=seq_sets, cuts=st.lists(st.integers(0, 200), max_size=8), order=st.randoms())
def test_merging_batches_in_any_order_with_redeliveries_gives_the_same_ranges(
    seen: set[int], cuts: list[int], order: object
) -> None:
    """Batches arrive in any order, some twice (at-least-once delivery): same ranges, same holes."""
    seqs = sorted(seen)
    bounds = sorted({0, len(seqs), *(c for c in cuts if c <= len(seqs))})
    batches = [seqs[a:b] for a, b in pairwise(bounds)]
    batches += batches[: len(batches) // 2]  # redelivered
    order.shuffle(batches)  # type: ignore[attr-defined]
    records: list[SeqRange] = []
    for i, batch in enumerate(batches):
        records += ranges_of([(s, float(s)) for s in batch], now=float(i))
    merged = merge(records)
    assert merge(merged) == merged  # idempotent
    assert merge(list(reversed(records))) == merged  # order-independent
    assert _seqs(merged) == seen
    if seen:
        assert _missing(merged) == set(range(1, max(seen) + 1)) - seen
        assert all(b.lo > a.hi + 1 for a, b in pairwise(merged))  # maximal runs
    else:
        assert merged == [] and gaps(merged) == []


@given(seen=seq_sets, now=st.floats(0, 1e6), grace=st.floats(0, 1e4))
def test_a_recorded_loss_closes_its_gap_and_nothing_else(seen: set[int], now: float, grace: float) -> None:
    merged = merge(ranges_of([(s, float(s)) for s in seen], now=0.0))
    lost = overdue(gaps(merged), now, grace)
    closed = merge([*merged, *(g.fill(now) for g in lost)])
    assert _seqs(closed) == seen | _missing(merged) if lost else closed == merged
    assert all(g.since >= 0.0 for g in gaps(closed))


@given(count=st.integers(0, 10_000), overflow=st.integers(-10, 20_000), reported=st.booleans())
def test_causes_always_add_up(count: int, overflow: int, reported: bool) -> None:
    split = causes(count, overflow, reported)
    assert sum(n for _, n in split) == count
    assert all(n > 0 for _, n in split)
    assert dict(split).get(OVERFLOW, 0) == max(0, min(count, overflow))
