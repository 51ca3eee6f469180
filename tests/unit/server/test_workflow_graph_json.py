"""``GET /api/workflows/{id}``: the hand-built JSON equals the pydantic mapping, attempt spans."""

from __future__ import annotations

import gc
import json
import math
import random
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from server_events import EventFactory, TestClient

from stemtrace.core.events import Event, decode_event
from stemtrace.core.model import AttemptSpan, Container, Edge, Node, WorkflowGraph
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow
from stemtrace.server import create_app
from stemtrace.server.api import mapping as m
from stemtrace.server.api.graph_json import iso, workflow_graph_json
from stemtrace.server.api.schemas import (
    AttemptSpanOut,
    CollapsedOut,
    EdgeOut,
    GroupOut,
    NodeOut,
    WorkflowGraphOut,
)
from stemtrace.server.graph_cache import gc_paused
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0
FIXTURES = sorted((Path(__file__).parents[2] / "golden" / "fixtures").glob("*.json"))
_DATETIME = TypeAdapter(datetime)


def pydantic_graph(graph: WorkflowGraph) -> WorkflowGraphOut:
    """The reference mapping: the route's declared response model, built field by field."""
    nodes = [
        NodeOut(
            id=n.id,
            name=n.name,
            state=n.state,
            attempts=n.attempts,
            worker=n.worker,
            queue=n.queue,
            sent_at=m.iso(n.sent_at),
            received_at=m.iso(n.received_at),
            started_at=m.iso(n.started_at),
            finished_at=m.iso(n.finished_at),
            runtime_ms=n.runtime_ms,
            exception_type=n.exception_type,
            parent_id=n.parent_id,
            group_id=n.group_id,
            group_index=n.group_index,
            plumbing=n.plumbing,
            attempt_spans=None
            if n.attempt_spans is None
            else [
                AttemptSpanOut(
                    number=a.number,
                    state=a.state,
                    worker=a.worker,
                    received_at=m.iso(a.received_at),
                    started_at=m.iso(a.started_at),
                    finished_at=m.iso(a.finished_at),
                )
                for a in n.attempt_spans
            ],
            skipped_reason=n.skipped_reason,
            skipped_by=n.skipped_by,
            collapsed=None
            if n.collapsed is None
            else CollapsedOut(
                count=n.collapsed.count,
                counts=dict(n.collapsed.counts),
                member_ids=list(n.collapsed.member_ids),
                parent_id=n.collapsed.parent_id,
                group_id=n.collapsed.group_id,
            ),
            eta=m.iso(n.eta),
        )
        for n in graph.nodes
    ]
    return WorkflowGraphOut(
        id=graph.id,
        name=graph.name,
        state=graph.state,
        task_count=graph.task_count,
        counts={k: int(v) for k, v in graph.counts.items()},
        started_at=m.iso(graph.started_at),
        finished_at=m.iso(graph.finished_at),
        scheduled_for=m.iso(graph.scheduled_for),
        shape=graph.shape,
        source=None,
        events_may_be_missing=False,  # set per request, after this mapping
        root_id=graph.root_id,
        nodes=nodes,
        edges=[EdgeOut(source=e.source, target=e.target, kind=e.kind) for e in graph.edges],
        groups=[
            GroupOut(
                id=g.id,
                kind="chord" if g.kind == "chord" else "group",
                members=list(g.members),
                callback=g.callback,
            )
            for g in graph.groups
        ],
        collapsed_tasks=int(graph.extra.get("collapsed_tasks", 0)),
    )


def pydantic_bytes(graph: WorkflowGraph) -> bytes:
    return pydantic_graph(graph).model_dump_json().encode()


def pydantic_iso(ts: float) -> str:
    return str(json.loads(_DATETIME.dump_json(datetime.fromtimestamp(ts, tz=timezone.utc))))


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_same_bytes_as_the_pydantic_models_for_every_recorded_workflow(fixture: Path) -> None:
    by_task: dict[str, list[Event]] = defaultdict(list)
    for raw in json.loads(fixture.read_text()):
        event = decode_event(raw)
        if event.task_id:
            by_task[event.task_id].append(event)
    records = [fold_task(task_id, events) for task_id, events in by_task.items()]
    for plumbing in (False, True):
        graph = build_workflow("wf", records, show_plumbing=plumbing)
        assert workflow_graph_json(graph) == pydantic_bytes(graph)


def test_same_bytes_for_awkward_values() -> None:
    spans = (
        AttemptSpan(1, TaskState.LOST, None, 1.5, None, 2.0000005),
        AttemptSpan(2, TaskState.SUCCESS, "wörker@h", None, 3.0, 4.25),
    )
    nodes = (
        Node('q"uo\\te', "naïve ✓ \n\t\x01", TaskState.SUCCESS, 2, "w", "q", 0.0, 1e-7, 1.9999999, 86_400.5,
             float("nan"), "E", None, "g", 0, False, spans),
        Node("b", None, TaskState.PLANNED, 0, None, None, None, None, None, None, float("inf"), None, None,
             None, None, True, None),
        Node("c", "x", TaskState.FAILURE, 1, None, None, 1_790_000_000.123456, 1_790_000_000.1234565,
             1_790_000_000.9999996, 4_102_444_800.0, 12, None, "b", None, 7, False, None),
        Node("d", "y", TaskState.RECEIVED, 1, None, None, None, None, None, None, 1e-7, None, None, None,
             None, False, None, None, None, None, 1_790_000_000.1234565),
    )  # fmt: skip
    graph = WorkflowGraph(
        id="wf",
        state=WorkflowState.RUNNING,
        task_count=3,
        counts={"SUCCESS": 1, "FAILURE": 1},
        started_at=None,
        finished_at=1.0,
        root_id=None,
        name="ünï",
        nodes=nodes,
        edges=(Edge("b", "c", "chain"),),
        groups=(Container("g", "chord", ("a", "b"), None), Container("h", "group", (), "c")),
        scheduled_for=1_790_000_000.1234565,
        shape='chord: "ünï" \u00d72 → y',
    )
    # The same document; only a float's exponent is spelt differently (1e-07 vs 1e-7).
    body = json.loads(workflow_graph_json(graph))
    assert body == json.loads(pydantic_bytes(graph))
    assert [n["runtime_ms"] for n in body["nodes"]] == [None, None, 12.0, 1e-7]
    assert workflow_graph_json(graph).replace(b"1e-07", b"1e-7") == pydantic_bytes(graph)


def test_iso_rounds_like_datetime_fromtimestamp() -> None:
    rnd = random.Random(5)
    stamps = [0.0, 1.0, 0.5, 1e-6, 4.9999999e-7, 5e-7, 1.0000005, 1.0000015, -1.5, -0.0000004, 59.9999996]
    stamps += [1_790_000_000 + k + (m + 0.5) / 1e6 for k in range(3) for m in (0, 1, 2, 499_999, 999_999)]
    stamps += [rnd.uniform(0, 4_000_000_000) for _ in range(2000)]
    stamps += [math.nextafter(1_790_000_000.0000005, d) for d in (0, math.inf)]
    for ts in stamps:
        assert iso(ts) == pydantic_iso(ts), ts
    assert iso(None) is None


def test_gc_paused_nests_and_restores() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "an application that turned the collector off keeps it off"
    finally:
        gc.enable()


def test_api_attempt_spans_of_a_retried_task(store: SqlStore) -> None:
    w1, w2 = EventFactory(node="w1@h1"), EventFactory(host="h2", node="w2@h2")
    t0 = w1.t0
    events = []
    for retries, worker in enumerate((w1, w2)):
        at = float(retries)
        events += [
            worker.event("task.published", "r", "proj.flaky", at, root_id="r", retries=retries),
            worker.event("task.received", "r", "proj.flaky", at + 0.1, retries=retries),
            worker.event("task.started", "r", "proj.flaky", at + 0.2, retries=retries),
        ]
    events.append(w1.event("task.retried", "r", "proj.flaky", 0.3, retries=0, exception_type="IOError"))
    events.append(w2.event("task.failed", "r", "proj.flaky", 1.5, retries=1, exception_type="KeyError"))
    events += w1.run("c", "proj.step", 2.0, parent_id="r", root_id="r")
    store.apply(events, {}, NOW)

    def stamp(offset: float) -> str:
        return pydantic_iso(t0 + offset)

    app = create_app(store=store, ingest=False)
    with TestClient(app) as c:
        response = c.get("/api/workflows/c")
        assert response.status_code == 200
        nodes = {n["id"]: n for n in response.json()["nodes"]}
        assert nodes["r"]["attempts"] == 2
        assert nodes["r"]["attempt_spans"] == [
            {
                "number": 1,
                "state": "RETRY",
                "worker": "w1@h1",
                "received_at": stamp(0.1),
                "started_at": stamp(0.2),
                "finished_at": stamp(0.3),
            },
            {
                "number": 2,
                "state": "FAILURE",
                "worker": "w2@h2",
                "received_at": stamp(1.1),
                "started_at": stamp(1.2),
                "finished_at": stamp(1.5),
            },
        ]
        assert nodes["c"]["attempt_spans"] is None
        assert c.get("/api/workflows/r").content == response.content  # served from the cache
        spec = c.get("/api/openapi.json").json()
    node = spec["components"]["schemas"]["NodeOut"]
    assert "attempt_spans" in node["required"]
    spans = node["properties"]["attempt_spans"]["anyOf"][0]
    assert spans["items"] == {"$ref": "#/components/schemas/AttemptSpanOut"}
    route = spec["paths"]["/api/workflows/{workflow_id}"]["get"]["responses"]["200"]
    graph_ref = {"$ref": "#/components/schemas/WorkflowGraphOut"}
    assert route["content"]["application/json"]["schema"] == graph_ref
