"""Roll a workflow's tasks up into one state, one task count, per-state counts and a name.

This is the only roll-up: the workflow page (``core.workflow.build_workflow``) and the
Workflows list (the summary row the store writes at ingest) both call :func:`summarize`
and :func:`root_order`, so the two can never disagree on a workflow's state, name, task
count or counts. What they feed it is the same too: every task of the workflow but
Celery's plumbing, plus the steps known only from an embedded canvas (``PLANNED``, or
``SKIPPED`` once they can no longer run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stemtrace.core.states import FAILED_STATES, FINAL_STATES, TaskState, WorkflowState

# Tasks Celery runs to drive a canvas, not work the user asked for: never counted, never
# a workflow's name. ``celery.chord_unlock`` polls a chord's header on result backends
# without native chord support and retries once a second until the header is done.
# Not plumbing: ``celery.accumulate`` (it carries the id of a task replaced by a group, so
# it *is* that task's last step), ``celery.map``/``starmap``/``chunks`` (they run the
# user's function), ``celery.backend_cleanup`` (a periodic task of its own).
PLUMBING_NAMES = frozenset({"celery.chord_unlock"})
_FAILED_VALUES = frozenset(s.value for s in FAILED_STATES)
_STATES = {s.value: s for s in TaskState}


def is_plumbing(name: str | None) -> bool:
    return name in PLUMBING_NAMES


@dataclass(frozen=True, slots=True)
class Summary:
    """A workflow's roll-up: what the Workflows list and the workflow page both show."""

    state: WorkflowState
    task_count: int
    counts: dict[str, int]  # every TaskState, zeros included
    has_failure: bool


def workflow_state(
    counts: Mapping[TaskState, int], never_sent: int = 0, not_needed: int = 0
) -> WorkflowState:
    """``RUNNING`` while any task (a ``PLANNED`` step included) is not final; then
    ``FAILURE`` if any task failed, was lost or was rejected, or a step was never sent;
    ``REVOKED`` if any other task did not complete (revoked, expired, ignored, skipped);
    else ``SUCCESS``.

    Dropped work therefore never rolls up to ``SUCCESS``, whatever Celery version
    reported it. ``never_sent`` counts the ``SKIPPED`` steps whose message never came
    (``planning.settle_never_sent``): nothing upstream stopped them, so the work was lost
    on the way (Celery's result backend records a chord callback it gave up on as a
    ``FAILURE``), not stopped on purpose. ``not_needed`` counts the ``SKIPPED`` error
    callbacks of tasks that succeeded (``planning.NOT_NEEDED``): nothing was dropped, so
    they do not make a workflow that did all its work ``REVOKED``.
    """
    running = failed = stopped = False
    for state, n in counts.items():
        if n <= 0:
            continue
        if state not in FINAL_STATES:
            running = True
        elif state in FAILED_STATES:
            failed = True
        elif state is TaskState.SKIPPED:
            stopped = stopped or n > not_needed
        elif state is not TaskState.SUCCESS:
            stopped = True
    if running:
        return WorkflowState.RUNNING
    if failed or never_sent > 0:
        return WorkflowState.FAILURE
    if stopped:
        return WorkflowState.REVOKED
    return WorkflowState.SUCCESS


def summarize(
    counts: Mapping[TaskState, int] | Mapping[str, int], never_sent: int = 0, not_needed: int = 0
) -> Summary:
    """The roll-up of a workflow whose counted tasks are in these states (by state or value),
    ``never_sent`` of its ``SKIPPED`` steps never sent and ``not_needed`` of them error
    callbacks not needed (see :func:`workflow_state`)."""
    by_state: dict[TaskState, int] = {}
    for key, n in counts.items():
        task_state = key if isinstance(key, TaskState) else _STATES.get(key) or TaskState(key)
        by_state[task_state] = by_state.get(task_state, 0) + int(n)
    out = {s.value: by_state.get(s, 0) for s in TaskState}
    has_failure = any(out[v] for v in _FAILED_VALUES) or never_sent > 0
    return Summary(workflow_state(by_state, never_sent, not_needed), sum(out.values()), out, has_failure)


# The states in which a task with an ETA/countdown is waiting for it, not running: sent
# (``PENDING``), held by a worker until due (``RECEIVED``, Celery reserves an ETA task at
# once), or between attempts of a retry whose countdown is the new ETA (``RETRY``).
SCHEDULED_STATES = frozenset({TaskState.PENDING, TaskState.RECEIVED, TaskState.RETRY})
_SCHEDULED_VALUES = frozenset(s.value for s in SCHEDULED_STATES)
_WAITING_BEHIND = frozenset({TaskState.PLANNED.value})  # can only start after a sent task finishes
_FINAL_VALUES = frozenset(s.value for s in FINAL_STATES)


def is_scheduled(state: TaskState | str, eta: float | None) -> bool:
    """A task waiting for its ETA/countdown (whether or not that time has passed)."""
    value = state.value if isinstance(state, TaskState) else state
    return eta is not None and value in _SCHEDULED_VALUES


def scheduled_for(counts: Mapping[str, int], scheduled: int, next_eta: float | None) -> float | None:
    """When a workflow that waits only on scheduled work is due to go on; else ``None``.

    ``counts`` are the roll-up's (``Summary.counts``), ``scheduled`` how many of those tasks
    are scheduled (:func:`is_scheduled`) and ``next_eta`` the earliest of their ETAs. The
    workflow waits only on scheduled work when every unfinished task is scheduled, or is a
    ``PLANNED`` step (which cannot start before a sent task finishes). Its ``state`` stays
    ``RUNNING`` (the API's contract); this says *why* nothing runs. No clock is read: a time
    already past is an overdue ETA, which ``stuck.waiting_tasks`` flags.
    """
    if next_eta is None or scheduled <= 0:
        return None
    unfinished = sum(
        int(n) for state, n in counts.items() if state not in _FINAL_VALUES and state not in _WAITING_BEHIND
    )
    return next_eta if unfinished == scheduled else None


def rollup(states: Iterable[TaskState]) -> tuple[WorkflowState, dict[str, int]]:
    """:func:`summarize` of individual states: the workflow's state and per-state counts."""
    summary = summarize(Counter(states))
    return summary.state, summary.counts


def root_order(sent_at: float | None, started_at: float | None, task_id: str) -> tuple[bool, float, str]:
    """Sort key of a workflow's tasks: sent ones first in send order, then the rest by id.

    A workflow's name is its root's: the first task in this order that nothing in the
    workflow leads to (no parent task in it, no designed step before it) and that is
    not plumbing.
    """
    stamp = sent_at if sent_at is not None else started_at
    return (stamp is None, stamp or 0.0, task_id)
