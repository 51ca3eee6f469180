"""Attempt spans on workflow graph nodes, from the skeleton rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.core.model import AttemptSpan, Node
from stemtrace.core.states import TaskState
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0
T0 = 1_790_000_000.0


def retried_twice() -> list[Event]:
    """``r`` fails twice and retries (on two workers), then succeeds; ``c`` is its one-attempt child."""
    w1 = EventFactory(host="h1", node="w1@h1")
    w2 = EventFactory(host="h2", node="w2@h2")
    events: list[Event] = []
    for retries, (worker, at) in enumerate(((w1, 0.0), (w2, 1.0), (w1, 2.0))):
        events += [
            worker.event("task.published", "r", "proj.flaky", at, root_id="r", queue="q", retries=retries),
            worker.event("task.received", "r", "proj.flaky", at + 0.1, retries=retries),
            worker.event("task.started", "r", "proj.flaky", at + 0.2, retries=retries),
        ]
        if retries < 2:
            events.append(
                worker.event(
                    "task.retried", "r", "proj.flaky", at + 0.3, retries=retries, exception_type="IOError"
                )
            )
        else:
            events.append(worker.event("task.succeeded", "r", "proj.flaky", at + 0.4, retries=2, runtime=0.2))
    events += w1.run("c", "proj.step", 3.0, parent_id="r", root_id="r")
    return events


def nodes(store: SqlStore) -> dict[str, Node]:
    workflow_id = store.resolve_workflow("r")
    assert workflow_id is not None
    graph = build_workflow(workflow_id, store.workflow_skeletons(workflow_id))
    return {n.id: n for n in graph.nodes}


def test_a_retried_task_has_one_span_per_attempt_in_order(store: SqlStore) -> None:
    store.apply(retried_twice(), {}, NOW)
    got = nodes(store)
    assert got["r"].attempts == 3
    assert got["r"].attempt_spans == (
        AttemptSpan(1, TaskState.RETRY, "w1@h1", T0 + 0.1, T0 + 0.2, T0 + 0.3),
        AttemptSpan(2, TaskState.RETRY, "w2@h2", T0 + 1.1, T0 + 1.2, T0 + 1.3),
        AttemptSpan(3, TaskState.SUCCESS, "w1@h1", T0 + 2.1, T0 + 2.2, T0 + 2.4),
    )
    assert got["r"].state is TaskState.SUCCESS
    assert got["c"].attempts == 1
    assert got["c"].attempt_spans is None
    # The skeleton rows give exactly what the full records give.
    full = build_workflow("r", store.workflow_records("r"))
    assert build_workflow("r", store.workflow_skeletons("r")) == full


def test_spans_follow_events_delivered_one_by_one_in_any_order(store: SqlStore) -> None:
    events = retried_twice()
    for event in reversed(events):  # every batch re-folds the task and rewrites its graph row
        store.apply([event], {}, NOW)
    spans = nodes(store)["r"].attempt_spans
    assert spans is not None
    assert [(s.number, s.state, s.worker) for s in spans] == [
        (1, TaskState.RETRY, "w1@h1"),
        (2, TaskState.RETRY, "w2@h2"),
        (3, TaskState.SUCCESS, "w1@h1"),
    ]


def _rewrite_graphs(store: SqlStore, change: object) -> None:
    with store.pool.connection() as conn:
        rows = conn.execute(store.dialect.sql("SELECT id, graph FROM tasks"), ()).fetchall()
        for task_id, graph in rows:
            new = change(json.loads(graph)) if callable(change) else change
            conn.execute(
                store.dialect.sql("UPDATE tasks SET graph = ? WHERE id = ?"),
                (None if new is None else json.dumps(new), task_id),
            )


def test_rows_written_before_spans_were_kept_read_as_no_spans(store: SqlStore) -> None:
    store.apply(retried_twice(), {}, NOW)
    _rewrite_graphs(store, lambda extra: extra[:4])  # graph rows without the spans
    got = nodes(store)
    assert (got["r"].attempts, got["r"].attempt_spans) == (3, None)
    assert (got["c"].attempts, got["c"].attempt_spans) == (1, None)
    assert got["r"].state is TaskState.SUCCESS
