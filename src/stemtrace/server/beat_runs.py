"""The celery beat view: each schedule entry's runs, observed interval and missed runs.

Read by ``/api/beat`` and by the ``beat_missed`` attention incidents (and so its alert rule),
so the page and the alert judge a run missed by one definition (``core.beat``). Every read is
bounded: an entry's interval and misses come from its latest :data:`SAMPLE` runs, its count
over the window from one index range.
"""

from __future__ import annotations

from dataclasses import dataclass

from stemtrace.core.beat import Missed, interval, missed_runs

__all__ = ["EntryView", "Missed", "interval", "overview", "page_misses"]
from stemtrace.server.store import Store
from stemtrace.server.store.beat import BeatRun, EntryReads

SAMPLE = 200  # runs read per entry to observe its interval and find its misses
RECENT = 60  # runs per entry the overview hands the page's strip
WINDOW_S = 86_400.0


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: str
    source: str  # the event source whose beat sends it ("" for the one unlabelled source)
    task_name: str | None
    interval: float | None  # the median gap between runs, seconds
    last: BeatRun | None
    runs: int  # runs sent since the window began
    missed: list[Missed]  # oldest first, those that end after the window began (or are open)
    recent: list[BeatRun]  # newest first, at most RECENT


def _view(reads: EntryReads, now: float, since: float) -> EntryView:
    every = interval(reads.sent)
    misses = [m for m in missed_runs(reads.sent, every, now) if m.before is None or m.before >= since]
    last = reads.recent[0] if reads.recent else None
    return EntryView(
        entry=reads.entry,
        source=reads.source,
        task_name=last.name if last else None,
        interval=every,
        last=last,
        runs=reads.count,
        missed=misses,
        recent=reads.recent,
    )


def overview(store: Store, now: float, since: float, source: str | None = None) -> list[EntryView]:
    """Every entry with runs stored (of ``source`` only, if given), by name then source."""
    return [_view(reads, now, since) for reads in store.beat_overview(since, SAMPLE, RECENT, source)]


def page_misses(runs: list[BeatRun], every: float | None, now: float | None) -> list[Missed]:
    """The misses between the runs of one page (newest first); ``now`` on the first page only."""
    return missed_runs([r.sent_at for r in reversed(runs)], every, now)
