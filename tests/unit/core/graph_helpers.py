"""Fold a scenario's events into a graph, and describe a graph compactly for asserts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from stemtrace.core.events import Event
from stemtrace.core.model import TaskRecord, WorkflowGraph
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow


def fold_all(events: Iterable[Event]) -> list[TaskRecord]:
    by_id: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.task_id:
            by_id[event.task_id].append(event)
    return [fold_task(task_id, evs) for task_id, evs in by_id.items()]


def graph_of(events: Iterable[Event], **options: Any) -> WorkflowGraph:
    return build_workflow("wf", fold_all(events), **options)


def shape(graph: WorkflowGraph) -> dict[str, Any]:
    """Everything a user sees: nodes with states, edges, containers, roll-up."""
    return {
        "state": graph.state.value,
        "root": graph.root_id,
        "nodes": {n.id: (n.name, n.state.value, n.attempts) for n in graph.nodes},
        "edges": {(e.source, e.target, e.kind) for e in graph.edges},
        "groups": {(c.id, c.kind, c.members, c.callback, c.branches) for c in graph.groups},
    }
