"""RECEIVED tasks a worker holds but does not run: past their ETA, or long after receipt."""

from __future__ import annotations

from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.stuck import eta_seconds, waiting_tasks

NOW = 1_800_000_000.0


def received(tid: str, *, eta: str | None = None, received_at: float = NOW - 5) -> TaskRecord:
    return TaskRecord(
        id=tid, name="proj.t", state=TaskState.RECEIVED, eta=eta, received_at=received_at, worker="w1"
    )


def test_a_scheduled_task_is_not_stuck_before_its_time_but_is_after_the_grace() -> None:
    future = "2027-01-15T09:00:00+00:00"  # an hour after NOW (2027-01-15T08:00Z)
    past = "2027-01-15T07:00:00+00:00"
    assert eta_seconds(future) is not None and eta_seconds(future) > NOW  # type: ignore[operator]
    due = eta_seconds(past)
    assert due is not None and due < NOW
    found = waiting_tasks([received("later", eta=future), received("late", eta=past)], NOW)
    assert [(t.task_id, t.reason) for t in found] == [("late", "eta_overdue")]
    assert found[0].since == due


def test_a_naive_eta_is_utc_and_a_bad_one_is_ignored() -> None:
    assert eta_seconds("2027-01-15T07:00:00") == eta_seconds("2027-01-15T07:00:00+00:00")
    assert eta_seconds("not a time") is None
    assert waiting_tasks([received("x", eta="not a time")], NOW) == []


def test_a_received_task_not_started_long_after_receipt_is_flagged() -> None:
    found = waiting_tasks(
        [received("old", received_at=NOW - 3600), received("new", received_at=NOW - 30)], NOW
    )
    assert [(t.task_id, t.reason) for t in found] == [("old", "not_started")]
    assert "w1" in found[0].detail
    started = TaskRecord(id="s", name="proj.t", state=TaskState.STARTED, received_at=NOW - 3600)
    assert waiting_tasks([started], NOW) == []
