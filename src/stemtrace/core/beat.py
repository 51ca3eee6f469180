"""Missed celery beat runs, judged from when an entry's runs were sent: pure, no clock.

Beat does not tell anyone its schedule (a crontab, a solar event, a custom ``schedule`` class, a
database row), so the interval is *observed*: the median gap between an entry's recent runs. The
median holds when beat was down for a while (the long gap is one sample among many) and when
one run was sent late. A gap is a miss when it is clearly longer than that interval: more than
:data:`MISSED_FACTOR` times it and more than :data:`MISSED_SLACK_S` beyond it (beat wakes up
at most every ``beat_max_loop_interval`` and a busy host delays it by a second, so a run every
second would otherwise look missed at every hiccup). A schedule whose gaps vary by design (a
crontab on weekdays only) shows its long gaps as misses; its alert rule can be narrowed by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

MISSED_FACTOR = 1.5
MISSED_SLACK_S = 1.0
MIN_RUNS = 3  # two gaps at least before an interval is trusted


@dataclass(frozen=True, slots=True)
class Missed:
    """Runs an entry did not get between two runs it did (``before`` None: none since)."""

    after: float  # the last run sent before the gap
    before: float | None  # the first run sent after it; None when the gap is still open
    missed: int  # how many runs the observed interval expected in the gap
    due: float  # when the first missed run was due (``after`` + interval)


def interval(sent: Sequence[float]) -> float | None:
    """The median gap between consecutive runs sent at ``sent`` (ascending), ``None`` for too few."""
    if len(sent) < MIN_RUNS:
        return None
    gaps = sorted(b - a for a, b in pairwise(sent) if b > a)
    if not gaps:
        return None
    mid = len(gaps) // 2
    value = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    return value if value > 0 else None


def is_miss(gap: float, every: float) -> bool:
    return gap > MISSED_FACTOR * every and gap > every + MISSED_SLACK_S


def missed_runs(sent: Sequence[float], every: float | None, now: float | None = None) -> list[Missed]:
    """The gaps in ``sent`` (ascending) longer than the interval ``every``, oldest first; with
    ``now``, also the gap since the last run when the next one is overdue by the same measure."""
    if every is None or every <= 0 or not sent:
        return []
    out = [
        Missed(a, b, max(1, round((b - a) / every) - 1), a + every)
        for a, b in pairwise(sent)
        if is_miss(b - a, every)
    ]
    last = sent[-1]
    if now is not None and is_miss(now - last, every):
        out.append(Missed(last, None, max(1, int((now - last) / every)), last + every))
    return out
