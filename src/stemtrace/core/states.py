"""Task and workflow states: the vocabulary every layer (API, UI, store) shares."""

from __future__ import annotations

from enum import Enum


class TaskState(str, Enum):
    """A task's state; the API's contract. ``PLANNED``/``SKIPPED`` exist only in workflows."""

    PLANNED = "PLANNED"  # known from an embedded canvas, not sent yet
    PENDING = "PENDING"  # published, not received by a worker yet
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    RETRY = "RETRY"  # this attempt asked to be retried; the next attempt is due
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    REJECTED = "REJECTED"
    IGNORED = "IGNORED"
    LOST = "LOST"  # the worker process died under it (WorkerLostError, hard time limit, kill, offline)
    SKIPPED = "SKIPPED"  # planned, but an upstream step failed so it will never run


FINAL_STATES = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILURE,
        TaskState.REVOKED,
        TaskState.REJECTED,
        TaskState.IGNORED,
        TaskState.LOST,
        TaskState.SKIPPED,
    }
)


# Final states of work that did not complete. A workflow holding any of them is never
# SUCCESS: ``FAILED_STATES`` roll it up to FAILURE (an error, a dead worker, a message the
# task refused with ``Reject``), the others to REVOKED (stopped on purpose: ``revoke``,
# expiry, ``raise Ignore()``, Celery's own "revoke-like" exit, and the steps that
# therefore never ran).
FAILED_STATES = frozenset({TaskState.FAILURE, TaskState.LOST, TaskState.REJECTED})
STOPPED_STATES = frozenset({TaskState.REVOKED, TaskState.IGNORED, TaskState.SKIPPED})


class WorkflowState(str, Enum):
    """Roll-up of a workflow's task states."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


def parse_task_state(value: str) -> TaskState:
    """Parse a user-supplied state name (case-insensitive); ``ValueError`` lists the valid ones."""
    try:
        return TaskState(value.strip().upper())
    except ValueError:
        valid = ", ".join(s.value for s in TaskState)
        raise ValueError(f"unknown state {value!r}; expected one of {valid}") from None
