"""Sequence gaps: which events of a library process never arrived, and since when we know.

Every event carries ``(inst, seq)``: ``inst`` names one library process (a new one after
each fork or restart) and ``seq`` counts its events from 1 with no hole. The server records
the seqs it has seen as *ranges* (maximal runs of consecutive seqs), merges them, and reads
the holes between them as *gaps*.

A gap is not a loss yet: batches arrive out of order (several replicas share a stream, a
crashed replica's batches are re-delivered to another a minute later), so a hole may close.
Each gap remembers since when it has had its current bounds (``since``, server time); one
that stays open past a grace period is a loss. Partly filling a gap restarts its clock:
events are still coming.

Only the seqs *between* seen ones can be known missing, plus those before the first seen
(a process's seqs start at 1). Events lost after the last one seen show up as a gap when
the process sends again (every ``library.health`` report does).

Pure: standard library only, no clock reads (``now`` is passed in), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

OVERFLOW: Final = "buffer overflow"  # the library dropped them: its buffer was full
TRIMMED: Final = "missing after broker trimming"  # the library sent them; the broker lost them
UNKNOWN: Final = "unknown"
CAUSES: Final = (OVERFLOW, TRIMMED, UNKNOWN)


@dataclass(frozen=True, slots=True)
class SeqRange:
    """Consecutive seqs ``lo..hi`` (inclusive) of one process, all seen.

    ``lo_at``/``hi_at``: server time the events at ``lo``/``hi`` were first recorded;
    ``lo_ts``/``hi_ts``: those events' own timestamps (the emitting process's clock).
    """

    lo: int
    hi: int
    lo_at: float
    hi_at: float
    lo_ts: float
    hi_ts: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs ``first..last`` (inclusive) not seen, with their bounds unchanged since ``since``.

    ``after_ts`` is the timestamp of the event just before (None before the first seen
    event), ``before_ts`` that of the event just after: the window the missing events
    were emitted in.
    """

    first: int
    last: int
    since: float
    after_ts: float | None
    before_ts: float

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def fill(self, now: float) -> SeqRange:
        """The range that closes this gap once it is recorded as a loss (so it is never
        reported twice)."""
        start = self.before_ts if self.after_ts is None else self.after_ts
        return SeqRange(self.first, self.last, now, now, start, self.before_ts)


def ranges_of(points: Iterable[tuple[int, float]], now: float) -> list[SeqRange]:
    """Maximal runs of consecutive seqs among ``(seq, event ts)`` pairs (duplicates allowed),
    recorded at ``now``. Seqs below 1 are ignored: they cannot be a library's."""
    ts_of: dict[int, float] = {}
    for seq, ts in points:
        if seq >= 1 and seq not in ts_of:
            ts_of[seq] = ts
    out: list[SeqRange] = []
    lo = prev = None
    for seq in sorted(ts_of):
        if prev is not None and seq == prev + 1:
            prev = seq
            continue
        if lo is not None and prev is not None:
            out.append(SeqRange(lo, prev, now, now, ts_of[lo], ts_of[prev]))
        lo = prev = seq
    if lo is not None and prev is not None:
        out.append(SeqRange(lo, prev, now, now, ts_of[lo], ts_of[prev]))
    return out


def _lower_end(a: SeqRange, b: SeqRange) -> SeqRange:
    """Of two ranges, the one whose ``lo`` end counts (the smaller ``lo``; the earlier record)."""
    if a.lo != b.lo:
        return a if a.lo < b.lo else b
    return a if a.lo_at <= b.lo_at else b


def _upper_end(a: SeqRange, b: SeqRange) -> SeqRange:
    if a.hi != b.hi:
        return a if a.hi > b.hi else b
    return a if a.hi_at <= b.hi_at else b


def merge(ranges: Iterable[SeqRange]) -> list[SeqRange]:
    """Overlapping or adjacent ranges joined, sorted by ``lo``. Order-independent and
    idempotent: merging the same records in any order, any number of times, gives one answer."""
    out: list[SeqRange] = []
    for r in sorted(ranges, key=lambda x: (x.lo, x.lo_at, -x.hi)):
        if out and r.lo <= out[-1].hi + 1:
            cur = out[-1]
            low, high = _lower_end(cur, r), _upper_end(cur, r)
            out[-1] = SeqRange(low.lo, high.hi, low.lo_at, high.hi_at, low.lo_ts, high.hi_ts)
        else:
            out.append(r)
    return out


def gaps(merged: list[SeqRange]) -> list[Gap]:
    """The holes of merged ranges (see :func:`merge`), the one before the first seen seq included."""
    out: list[Gap] = []
    if not merged:
        return out
    first = merged[0]
    if first.lo > 1:
        out.append(Gap(1, first.lo - 1, first.lo_at, None, first.lo_ts))
    for a, b in pairwise(merged):
        if b.lo > a.hi + 1:
            out.append(Gap(a.hi + 1, b.lo - 1, max(a.hi_at, b.lo_at), a.hi_ts, b.lo_ts))
    return out


def overdue(found: Iterable[Gap], now: float, grace: float) -> list[Gap]:
    """The gaps open for at least ``grace`` seconds: losses."""
    return [g for g in found if now - g.since >= grace]


def causes(count: int, overflow_unexplained: int, library_reported: bool) -> list[tuple[str, int]]:
    """Split a loss of ``count`` events by cause.

    ``overflow_unexplained``: events the process reported dropping for a full buffer
    (its ``library.health`` ``drops``) not yet matched to a loss. Those explain the loss
    first. The rest were handed to the broker when the process has reported its health
    (a drop would have been counted), so the broker lost them (trimmed by length or age,
    or a restart without persistence); without any report the cause is unknown.
    """
    out: list[tuple[str, int]] = []
    overflow = max(0, min(count, overflow_unexplained))
    if overflow:
        out.append((OVERFLOW, overflow))
    rest = count - overflow
    if rest:
        out.append((TRIMMED if library_reported else UNKNOWN, rest))
    return out
