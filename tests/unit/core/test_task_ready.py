"""``task.ready``: the outcome a prefork child returned, reported by the worker's main process
after the child died. It decides an attempt only when the attempt's own events end unfinished,
in any order, and never stands in for data the main process did not have."""

from __future__ import annotations

import itertools

import pytest
from canvas_factory import Recorder

from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.task import fold_task

ACCEPTED = 1_699_999_999.5


def ready(r: Recorder, state: str, *, retries: int = 0, **data: object) -> None:
    r.emit(
        "main1",
        "task.ready",
        "t",
        "job",
        retries=retries,
        replaced_task_nesting=0,
        state=state,
        runtime=data.pop("runtime", 0.25),
        accepted_at=ACCEPTED,
        worker_pid=7,
        **data,
    )


def received() -> Recorder:
    r = Recorder()
    r.publish("client", "t", "job")
    r.receive("t", "job")
    return r


def fold(r: Recorder) -> TaskRecord:
    return fold_task("t", r.events)


def test_it_decides_an_attempt_whose_child_sent_nothing() -> None:
    r = received()
    ready(r, "SUCCESS")
    (attempt,) = fold(r).attempts
    assert attempt.state is TaskState.SUCCESS
    assert attempt.outcome_from == "main"
    assert attempt.runtime_ms == pytest.approx(250.0)
    assert attempt.started_at == ACCEPTED  # Celery's time_start: when the child accepted it
    assert attempt.handler_ms is None  # the main process does not know it: not made up
    assert fold(r).result is None


def test_it_decides_an_attempt_whose_child_only_said_it_started() -> None:
    r = received()
    r.start("t", "job")
    ready(r, "FAILURE", runtime=None, exception_type="builtins.ValueError", exception="boom")
    record = fold(r)
    (attempt,) = record.attempts
    assert (attempt.state, attempt.exception_type, attempt.exception) == (
        TaskState.FAILURE,
        "builtins.ValueError",
        "boom",
    )
    assert attempt.started_at == next(e.ts for e in r.events if e.type == "task.started")
    assert attempt.runtime_ms is None  # Celery measures no runtime for a failure
    assert attempt.outcome_from == "main"


@pytest.mark.parametrize("told", ["SUCCESS", "FAILURE"])
def test_the_childs_own_outcome_wins_in_any_order(told: str) -> None:
    r = received()
    r.start("t", "job")
    r.succeed("t", "job")
    ready(r, told, exception_type="builtins.ValueError" if told == "FAILURE" else None)
    for events in itertools.permutations(r.events):
        (attempt,) = fold_task("t", list(events)).attempts
        assert attempt.state is TaskState.SUCCESS
        assert attempt.outcome_from is None
        assert attempt.runtime_ms == pytest.approx(2.0)


def test_it_belongs_to_the_attempt_it_names() -> None:
    """A retry's first attempt ended RETRY (as the main process heard); the retry itself, not
    yet run, stays RECEIVED."""
    r = received()
    r.start("t", "job")
    ready(r, "RETRY", exception_type="celery.exceptions.Retry")
    r.receive("t", "job", retries=1)
    first, second = fold(r).attempts
    assert (first.state, first.outcome_from) == (TaskState.RETRY, "main")
    assert (second.state, second.outcome_from) == (TaskState.RECEIVED, None)


def test_an_outcome_the_attempt_states_is_not_replaced() -> None:
    r = received()
    ready(r, "SUCCESS")
    r.emit("main1", "task.failed", "t", "job", exception_type="WorkerLostError", origin="main")
    assert fold(r).state is TaskState.LOST


@pytest.mark.parametrize(
    ("told", "state"),
    [("IGNORED", TaskState.IGNORED), ("REJECTED", TaskState.REJECTED), ("bogus", TaskState.RECEIVED)],
)
def test_every_state_a_child_returns(told: str, state: TaskState) -> None:
    r = received()
    ready(r, told)
    assert fold(r).state is state
