"""A collapsed graph is the full graph with sibling sets folded, nothing else, on both engines.

With the thresholds lowered so that every group and every set of spawned siblings of the
golden recordings collapses, the graph ``fanout`` builds in SQL must be exactly the full
graph (``build_workflow`` over every record) with each set's members replaced by one node:
same other nodes and states, the set's counts equal to its members' states, every edge
of the full graph mapped onto the sets, and the workflow's summary unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import decode_event
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store import SqlStore, WorkflowQuery, fanout

GOLDEN = Path(__file__).parents[1] / "golden"
FIXTURES = sorted([*(GOLDEN / "fixtures").glob("*.json"), *(GOLDEN / "fixtures_extra").glob("*.json")])
NOW = 1_790_500_000.0


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_collapsed_graph_is_the_full_graph_folded(
    store: SqlStore, fixture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "FANOUT_MIN", 2)
    raw: list[dict[str, Any]] = json.loads(fixture.read_text())
    store.apply([decode_event(e) for e in raw], {}, NOW)
    (row,) = store.list_workflows(WorkflowQuery(limit=10)).items
    full = build_workflow(row.id, store.workflow_skeletons(row.id))
    folded = store.collapsed_graph(row)
    sent = [n for n in full.nodes if n.state.value not in ("PLANNED", "SKIPPED")]
    in_groups = Counter(n.group_id for n in sent if n.group_id and n.group_index is not None)
    if folded is None:  # no two sent members of one group (nor two spawned siblings: asserted below)
        assert all(n < 2 for n in in_groups.values())
        assert fixture.stem.split("__")[0] not in ("spawner", "group", "chord")
        return
    assert {g for g, n in in_groups.items() if n >= 2} <= {
        n.collapsed.group_id for n in folded.nodes if n.collapsed is not None
    }
    summary = (folded.state, folded.name, folded.task_count, dict(folded.counts))
    assert summary == (full.state, full.name, full.task_count, dict(full.counts))
    into: dict[str, str] = {}
    for node in folded.nodes:
        if node.collapsed is not None:
            assert node.collapsed.count == len(node.collapsed.member_ids)  # small sets: every member listed
            for member in node.collapsed.member_ids:
                into[member] = node.id
    shown = {n.id: n for n in folded.nodes}
    real = {n.id: n for n in full.nodes if not n.plumbing}
    for node in real.values():
        if node.id in into:
            continue
        assert node.id in shown, node
        assert (shown[node.id].state, shown[node.id].name) == (node.state, node.name)
    for node in folded.nodes:
        if node.collapsed is None:
            assert node.id in real, node
            continue
        states = Counter(real[m].state.value for m in node.collapsed.member_ids)
        assert {k: v for k, v in node.collapsed.counts.items() if v} == dict(states)
        assert node.state in {real[m].state for m in node.collapsed.member_ids}
    mapped = {
        (into.get(e.source, e.source), into.get(e.target, e.target), e.kind)
        for e in full.edges
        if into.get(e.source, e.source) != into.get(e.target, e.target)
    }
    got = {(e.source, e.target, e.kind) for e in folded.edges}
    assert {(s, t) for s, t, _ in got} == {(s, t) for s, t, _ in mapped}
    assert folded.extra["collapsed_tasks"] == len(into)
