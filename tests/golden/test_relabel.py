"""The same events give the same graph whatever the id values and the arrival order.

Celery's ids are random uuids, so nothing a user sees may depend on how they compare:
each recording (the golden ones, plus ``fixtures_extra/``: a chain of two consecutive
groups, a rejected and an ignored chain step) is relabelled (every id replaced,
consistently, by another random one) and shuffled; the graph built from it, mapped back
through the relabelling, must be the graph of the original events.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemtrace.core.events import Event, decode_event
from stemtrace.core.model import TaskRecord, WorkflowGraph
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow

HERE = Path(__file__).resolve().parent
RECORDINGS = sorted([*(HERE / "fixtures").glob("*.json"), *(HERE / "fixtures_extra").glob("*.json")])
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _ids(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        if _UUID.match(value):
            out.add(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _ids(item, out)
    elif isinstance(value, list):
        for item in value:
            _ids(item, out)


def _relabel(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, Mapping):
        return {k: _relabel(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v, mapping) for v in value]
    return value


def _fold(events: Iterable[Event]) -> list[TaskRecord]:
    by_id: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.task_id:
            by_id[event.task_id].append(event)
    return [fold_task(task_id, evs) for task_id, evs in by_id.items()]


def _graph(raw: list[dict[str, Any]]) -> WorkflowGraph:
    return build_workflow("wf", _fold(decode_event(e) for e in raw), show_plumbing=True)


def canonical(graph: WorkflowGraph, back: Mapping[str, str]) -> dict[str, Any]:
    """Everything the graph shows, ids mapped through ``back``; orders kept where they mean something."""

    def m(value: str | None) -> str | None:
        return None if value is None else back.get(value, value)

    return {
        "summary": (graph.state, graph.task_count, dict(graph.counts), m(graph.root_id), graph.name),
        "times": (graph.started_at, graph.finished_at),
        "nodes": {
            m(n.id): (
                n.name,
                n.state,
                n.attempts,
                n.sent_at,
                n.finished_at,
                m(n.parent_id),
                m(n.group_id),
                n.group_index,
                n.plumbing,
                n.skipped_reason if n.skipped_reason is None else _map_text(n.skipped_reason, back),
                m(n.skipped_by),
            )
            for n in graph.nodes
        },
        "edges": {(m(e.source), m(e.target), e.kind) for e in graph.edges},
        # Member order is group_index order, so it must survive relabelling as it is.
        "groups": {
            m(c.id): (
                c.kind,
                tuple(map(m, c.members)),
                m(c.callback),
                tuple(tuple(map(m, b)) for b in c.branches),
            )
            for c in graph.groups
        },
    }


def _map_text(text: str, back: Mapping[str, str]) -> str:
    for new, old in back.items():
        text = text.replace(new, old)
    return text


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_relabelled_and_shuffled_events_give_the_same_graph(path: Path, seed: int) -> None:
    raw = json.loads(path.read_text())
    expected = canonical(_graph(raw), {})
    rng = random.Random(seed)
    found: set[str] = set()
    _ids(raw, found)
    mapping = {old: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for old in sorted(found)}
    relabelled = [_relabel(e, mapping) for e in raw]
    rng.shuffle(relabelled)
    back = {new: old for old, new in mapping.items()}
    assert canonical(_graph(relabelled), back) == expected


def test_the_extra_recordings_are_there() -> None:
    names = {p.name.split("__")[0] for p in (HERE / "fixtures_extra").glob("*.json")}
    assert {"chain_two_groups", "chain_rejected", "chain_ignored"} <= names
