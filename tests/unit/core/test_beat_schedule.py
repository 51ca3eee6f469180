"""Beat runs: the entry a task's messages name, the observed interval and the missed runs."""

from __future__ import annotations

import pytest
from canvas_factory import Recorder

from stemtrace.core.beat import MISSED_SLACK_S, interval, is_miss, missed_runs
from stemtrace.core.task import BEAT_ENTRY_MAX, fold_task


def _sent_by_beat(beat_value: object, received_mark: object = None) -> Recorder:
    r = Recorder()
    r.emit("beat", "task.published", "t", "job", root_id="t", retries=0, beat=beat_value)
    r.receive("t", "job", beat=received_mark)
    r.start("t", "job")
    r.succeed("t", "job")
    return r


@pytest.mark.parametrize(
    ("published", "received", "entry"),
    [
        ("nightly", None, "nightly"),  # stemtrace in beat named it
        ("nightly", True, "nightly"),  # a name beats a bare mark, in any order
        (None, "db-entry", "db-entry"),  # django-celery-beat's header, read by the worker
        (None, True, "job"),  # Celery 5.7's mark alone: the task's name stands for the entry
        (True, None, "job"),
        (None, None, None),  # not beat's
        (None, "", None),
        (7, None, None),  # nonsense is ignored
    ],
)
def test_the_entry_a_task_was_sent_by(published: object, received: object, entry: str | None) -> None:
    assert fold_task("t", _sent_by_beat(published, received).events).beat_entry == entry


def test_a_long_entry_name_is_cut() -> None:
    record = fold_task("t", _sent_by_beat("x" * 1000).events)
    assert record.beat_entry == "x" * BEAT_ENTRY_MAX


def test_the_entry_survives_the_record_round_trip() -> None:
    record = fold_task("t", _sent_by_beat("nightly").events)
    assert type(record).from_dict(record.to_dict()).beat_entry == "nightly"


def test_interval_is_the_median_gap_and_needs_three_runs() -> None:
    assert interval([]) is None and interval([1.0, 2.0]) is None
    assert interval([0.0, 10.0, 20.0, 30.0, 100.0]) == 10.0  # one long stop is one sample
    assert interval([0.0, 1.0, 3.0, 4.0]) == 1.0
    assert interval([0.0, 1.0, 2.0, 4.0]) == 1.0
    assert interval([5.0, 5.0, 5.0]) is None  # no gap at all


def test_a_miss_is_clearly_longer_than_the_interval() -> None:
    assert not is_miss(1.4, 1.0)  # within 1.5x
    assert not is_miss(1.0 + MISSED_SLACK_S, 1.0)  # a one-second hiccup of a fast entry
    assert is_miss(2.5, 1.0)
    assert not is_miss(140.0, 100.0) and is_miss(151.0, 100.0)


def test_missed_runs_between_runs_and_since_the_last() -> None:
    sent = [0.0, 10.0, 20.0, 60.0, 70.0]
    every = interval(sent)
    assert every == 10.0
    closed = missed_runs(sent, every)
    assert [(m.after, m.before, m.missed, m.due) for m in closed] == [(20.0, 60.0, 3, 30.0)]
    assert missed_runs(sent, every, now=75.0) == closed  # the next run is not due yet
    open_gap = missed_runs(sent, every, now=100.0)[-1]
    assert (open_gap.after, open_gap.before, open_gap.missed) == (70.0, None, 3)
    assert missed_runs(sent, None, now=1e9) == []  # no interval observed: nothing is judged
