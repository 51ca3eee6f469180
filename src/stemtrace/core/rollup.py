"""Roll a workflow's task states up into one workflow state and per-state counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from stemtrace.core.states import FINAL_STATES, TaskState, WorkflowState

_FAILED = frozenset({TaskState.FAILURE, TaskState.LOST})


def rollup(states: Iterable[TaskState]) -> tuple[WorkflowState, dict[str, int]]:
    """The workflow's state and how many tasks are in each state.

    ``RUNNING`` while any task (``PLANNED`` ones included) is not final; then
    ``FAILURE`` if any task failed or was lost, ``REVOKED`` if one was revoked and
    none failed, else ``SUCCESS``. Counts list every state, zeros included, so the
    API shape does not depend on the data.
    """
    tally = Counter(states)  # one pass in C: a 10,000-task graph rolls up per request
    counts = {state.value: tally.get(state, 0) for state in TaskState}
    running = failed = revoked = False
    for state in tally:
        if state not in FINAL_STATES:
            running = True
        elif state in _FAILED:
            failed = True
        elif state is TaskState.REVOKED:
            revoked = True
    if running:
        return WorkflowState.RUNNING, counts
    if failed:
        return WorkflowState.FAILURE, counts
    if revoked:
        return WorkflowState.REVOKED, counts
    return WorkflowState.SUCCESS, counts
