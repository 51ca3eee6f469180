"""The task reducer: one state per event type, attempts, lost workers, replace."""

from __future__ import annotations

import canvas_scenarios as sc
import pytest
from canvas_factory import Recorder

from stemtrace.core.events import Event
from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.task import fold_task, mark_lost


def fold(r: Recorder, task_id: str = "t") -> TaskRecord:
    return fold_task(task_id, r.events)


def started() -> Recorder:
    r = Recorder()
    r.publish("client", "t", "job")
    r.receive("t", "job")
    r.start("t", "job")
    return r


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        (0, TaskState.PENDING),
        (1, TaskState.RECEIVED),
        (2, TaskState.STARTED),
    ],
)
def test_lifecycle_states(steps: int, state: TaskState) -> None:
    r = Recorder()
    r.publish("client", "t", "job")
    if steps >= 1:
        r.receive("t", "job")
    if steps >= 2:
        r.start("t", "job")
    assert fold(r).state is state


@pytest.mark.parametrize(
    ("postrun_state", "expected"),
    [("IGNORED", TaskState.IGNORED), ("REJECTED", TaskState.REJECTED), (None, TaskState.LOST)],
)
def test_postrun_decides_when_nothing_else_does(postrun_state: str | None, expected: TaskState) -> None:
    r = started()
    r.emit("child1", "task.postrun", "t", "job", retries=0, state=postrun_state)
    record = fold(r)
    assert record.state is expected
    assert (record.attempts[-1].lost_reason is not None) == (expected is TaskState.LOST)


@pytest.mark.parametrize(
    ("exc", "reason_part"),
    [("billiard.exceptions.WorkerLostError", "worker lost"), ("TimeLimitExceeded", "time limit")],
)
def test_main_process_failure_is_lost(exc: str, reason_part: str) -> None:
    r = started()
    r.emit("main1", "task.failed", "t", "job", exception_type=exc, exception="exitcode 3", origin="main")
    record = fold(r)
    assert record.state is TaskState.LOST
    assert reason_part in (record.attempts[-1].lost_reason or "")


def test_main_process_soft_limit_is_a_failure_not_lost() -> None:
    r = started()
    r.emit("main1", "task.failed", "t", "job", exception_type="SoftTimeLimitExceeded", origin="main")
    assert fold(r).state is TaskState.FAILURE


def test_terminate_is_revoked_even_though_the_child_was_killed() -> None:
    r = started()
    r.emit("child1", "task.postrun", "t", "job", retries=0, state=None)
    r.emit("main1", "task.revoked", "t", "job", terminated=True, signum=15, expired=False)
    assert fold(r).state is TaskState.REVOKED


def test_revoked_before_start() -> None:
    r = Recorder()
    r.publish("client", "t", "job")
    r.emit("main1", "task.revoked", "t", "job", terminated=False, expired=True)
    record = fold(r)
    assert record.state is TaskState.REVOKED and len(record.attempts) == 1


def test_unknown_task_is_a_not_registered_failure() -> None:
    r = Recorder()
    r.publish("client", "t", "nope")
    r.emit("main1", "task.unknown", "t", "nope")
    record = fold(r)
    assert record.state is TaskState.FAILURE
    assert record.exception_type == "celery.exceptions.NotRegistered"


def test_retry_attempts_keep_their_own_outcome() -> None:
    record = fold_task("r0", sc.retry())
    assert [a.state for a in record.attempts] == [TaskState.RETRY, TaskState.RETRY, TaskState.SUCCESS]
    assert [a.number for a in record.attempts] == [1, 2, 3]
    assert record.attempts[0].exception_type == "RuntimeError"
    assert record.retries == 2
    assert record.parent_id is None  # the retry's self-parent is not the task's parent


def test_redelivery_after_a_lost_worker() -> None:
    r = started()
    r.receive("t", "job", main="main2", redelivered=True)
    r.start("t", "job", child="child2")
    r.succeed("t", "job", child="child2")
    record = fold(r)
    assert [a.state for a in record.attempts] == [TaskState.LOST, TaskState.SUCCESS]
    assert record.attempts[0].lost_reason == "redelivered: worker lost"
    assert record.attempts[1].redelivered and record.attempts[1].worker == "w2@host"
    assert record.state is TaskState.SUCCESS


def test_redelivery_not_yet_started_keeps_the_lost_attempt() -> None:
    r = started()
    r.receive("t", "job", main="main2", redelivered=True)
    record = fold(r)
    assert [a.state for a in record.attempts] == [TaskState.LOST, TaskState.RECEIVED]


def test_replace_keeps_the_name_history() -> None:
    record = fold_task("p0", sc.replace())
    assert record.names == ("replacer", "add")
    assert record.name == "add"
    assert [a.state for a in record.attempts] == [TaskState.IGNORED, TaskState.SUCCESS]
    assert record.replaced_task_nesting == 1


def test_fields_from_messages_and_outcome() -> None:
    r = started()
    r.succeed("t", "job")
    record = fold(r)
    assert record.worker == "w1@host" and record.queue == "celery"
    assert record.result == 1 and record.runtime_ms == pytest.approx(2.0)
    assert record.sent_at is not None and record.received_at is not None and record.started_at is not None
    assert record.sent_at < record.started_at < (record.finished_at or 0)
    assert record.updated_at == max(e.ts for e in r.events)


def test_success_before_start_converges() -> None:
    r = started()
    r.succeed("t", "job")
    assert fold_task("t", list(reversed(r.events))) == fold(r)


def test_events_of_other_ids_are_ignored() -> None:
    r = started()
    r.publish("client", "other", "job")
    assert fold(r) == fold_task("t", [e for e in r.events if e.task_id == "t"])


def test_mark_lost_only_while_running() -> None:
    record = fold(started())
    lost = mark_lost(record, "worker w1@host went offline", at=2e9)
    assert lost.state is TaskState.LOST and lost.attempts[-1].lost_reason == "worker w1@host went offline"
    assert lost.finished_at == 2e9
    done = started()
    done.succeed("t", "job")
    finished = fold(done)
    assert mark_lost(finished, "offline", at=2e9) is finished


def test_record_round_trips_through_dict() -> None:
    record = fold_task("r0", sc.retry())
    assert TaskRecord.from_dict(record.to_dict()) == record


def _shift(events: list[Event], by: float) -> list[Event]:
    from dataclasses import replace

    return [replace(e, ts=e.ts + by) if e.src.proc == "child" else e for e in events]


def test_skewed_child_clock_does_not_change_states() -> None:
    events = sc.retry()
    straight = fold_task("r0", events)
    skewed = fold_task("r0", _shift(events, -30.0))
    assert [a.state for a in skewed.attempts] == [a.state for a in straight.attempts]
