"""Planned steps of workflows that are over: they were never sent.

A step known only from a canvas stays ``PLANNED`` while its message may still come. When
every counted task of its workflow is final and nothing of the workflow was stored for
``--never-sent-after`` (server time), it will not: the process that should have sent it died,
Celery gave up on a chord's callback (it records a ``ChordError`` in the result backend and
sends nothing), or a task cleared ``request.chain``. The maintenance thread finds such
workflows here and rolls them up again with the moment it decided (``workflows.settled_at``):
``core.planning.settle_never_sent`` then draws those steps ``SKIPPED`` with why, and the row,
the page (the graph is built with the row's ``settled_at``) and the planned ids' answers agree.
The roll-up bumps the workflow's ``version`` (the graph cache misses) and its ``ingested_at``
(the live stream tells the UI). Anything stored for the workflow later clears the moment
(``summary._over``), so a late message makes the step what it is.

Candidates are read in ``(ingested_at, id)`` order after a cursor the caller keeps: a workflow
examined and left alone (a task of it still running) is not read again until it changes,
which moves it past the cursor.
"""

from __future__ import annotations

import json
from typing import Any

from stemtrace.core.states import FINAL_STATES, TaskState, WorkflowState
from stemtrace.server.store.summary import roll_up
from stemtrace.server.store.write import BatchWriter

Cursor = tuple[float, str]
START: Cursor = (0.0, "")  # before any epoch time
_BATCH = 200  # workflows read per transaction


def over_with_planned(counts: dict[str, Any]) -> bool:
    """A summary row's counts: some step still planned, every other task final."""
    if int(counts.get(TaskState.PLANNED.value, 0)) <= 0:
        return False
    return all(
        int(n) <= 0 or state == TaskState.PLANNED.value or TaskState(state) in FINAL_STATES
        for state, n in counts.items()
    )


def settle(w: BatchWriter, quiet_for: float, after: Cursor, batch: int = _BATCH) -> tuple[int, Cursor, bool]:
    """One batch: how many workflows got never-sent steps, the cursor to go on from, and
    whether candidates may remain beyond it."""
    cutoff = w.now - quiet_for
    ts, key = after
    rows = w.q(
        "SELECT id, counts, ingested_at FROM workflows WHERE state = ? AND settled_at IS NULL "
        "AND ingested_at <= ? AND (ingested_at > ? OR (ingested_at = ? AND id > ?)) "
        "ORDER BY ingested_at, id LIMIT ?",
        [WorkflowState.RUNNING.value, cutoff, ts, ts, key, batch],
    )
    if not rows:
        return 0, after, False
    ready = [wf for wf, counts, _ in rows if over_with_planned(json.loads(counts))]
    if ready:
        roll_up(w, ready, settle_at=w.now)
    last = rows[-1]
    return len(ready), (float(last[2]), str(last[0])), len(rows) == batch
