"""The Workflows list, the workflow page, the failures inbox and the task stats agree.

Every recording of a real Celery run (``tests/golden/fixtures*``) is stored through the
real ingest path, in one batch and in shuffled batches, on SQLite and PostgreSQL. Then,
for every workflow, the list row (rolled up at ingest) and the page (the graph built
from the stored tasks) must say the same state, name, task count and counts; Celery's
plumbing must be neither counted nor the name; the failures inbox must hold exactly the
failed tasks the pages show, and the per-task stats the same totals.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import Event, decode_event
from stemtrace.core.rollup import PLUMBING_NAMES
from stemtrace.core.states import FAILED_STATES, TaskState
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store import SqlStore, WorkflowQuery

GOLDEN = Path(__file__).parents[1] / "golden"
FIXTURES = sorted([*(GOLDEN / "fixtures").glob("*.json"), *(GOLDEN / "fixtures_extra").glob("*.json")])
NOW = 1_790_200_000.0


def load(path: Path) -> list[Event]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [decode_event(r) for r in raw]


def disagreements(store: SqlStore) -> list[str]:
    """Every way the list, the page, the inbox and the stats contradict each other."""
    out: list[str] = []
    rows = store.list_workflows(WorkflowQuery(limit=1000)).items
    failed: Counter[tuple[str | None, str | None]] = Counter()
    per_name: dict[str, Counter[str]] = {}
    for row in rows:
        page = build_workflow(row.id, store.workflow_skeletons(row.id), settled_at=row.settled_at)
        listed = (row.state, row.name, row.task_count, {k: v for k, v in row.counts.items() if v})
        shown = (page.state.value, page.name, page.task_count, {k: v for k, v in page.counts.items() if v})
        if listed != shown:
            out.append(f"{row.id}: list {listed} != page {shown}")
        if row.name in PLUMBING_NAMES:
            out.append(f"{row.id}: named after plumbing {row.name}")
        for node in page.nodes:
            if node.plumbing:
                continue
            if node.state in FAILED_STATES:
                failed[(node.name, node.exception_type)] += 1
            if node.state not in (TaskState.PLANNED, TaskState.SKIPPED) and node.name:
                per_name.setdefault(node.name, Counter())[node.state.value] += 1
    inbox = Counter(
        {(g["name"], g["exception_type"]): g["count"] for g in store.failures(None, None, None, 1000)}
    )
    if inbox != failed:
        out.append(f"failures inbox {dict(inbox)} != failed tasks on the pages {dict(failed)}")
    stats = {s["name"]: s for s in store.task_stats(0.0, NOW * 2, None, 10)}
    if set(stats) != set(per_name):
        out.append(f"stats names {sorted(stats)} != task names on the pages {sorted(per_name)}")
    for name, states in per_name.items():
        s = stats.get(name)
        if s is None:
            continue
        want = (
            sum(states.values()),
            states["SUCCESS"],
            sum(states[st.value] for st in FAILED_STATES),
            states["REVOKED"],
        )
        got = (s["total"], s["succeeded"], s["failed"], s.get("revoked"))
        if got != want:
            out.append(f"stats of {name}: {got} != pages {want}")
    return out


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_list_and_page_agree_on_every_recording(store: SqlStore, fixture: Path) -> None:
    events = load(fixture)
    store.apply(events, {}, NOW)
    assert disagreements(store) == [], "one batch"
    # Arrival in any order, in batches: the summary is rewritten at every batch.
    rnd = random.Random(fixture.stem)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    for start in range(0, len(shuffled), 3):
        store.apply(shuffled[start : start + 3], {}, NOW)
    assert disagreements(store) == [], "shuffled batches"


def test_list_and_page_agree_with_every_recording_in_one_store(store: SqlStore) -> None:
    for fixture in FIXTURES:
        store.apply(load(fixture), {}, NOW)
    assert disagreements(store) == []
    rows = store.list_workflows(WorkflowQuery(limit=1000)).items
    assert len(rows) == len(FIXTURES)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_every_moment_of_ingest_agrees(store: SqlStore, fixture: Path) -> None:
    """Mid-run too: after each event of the recording, in recorded order."""
    for event in load(fixture):
        store.apply([event], {}, NOW)
        assert disagreements(store) == [], event.type


def _rows_by_scenario(store: SqlStore) -> dict[str, Any]:
    return {row.name: row for row in store.list_workflows(WorkflowQuery(limit=1000)).items}


@pytest.mark.parametrize("version", ["5.3.6", "5.7.0"])
def test_dropped_work_never_rolls_up_to_success(store: SqlStore, version: str) -> None:
    """``Reject(requeue=False)`` and ``raise Ignore()`` in the middle of a chain: the step after
    never runs (SKIPPED, naming the task that stopped it) and the workflow is not SUCCESS."""
    for scenario, expected in (("chain_rejected", "FAILURE"), ("chain_ignored", "REVOKED")):
        store.apply(load(GOLDEN / "fixtures_extra" / f"{scenario}__celery-{version}.json"), {}, NOW)
        row = next(iter(store.list_workflows(WorkflowQuery(limit=1000)).items))
        assert row.state == expected, scenario
        page = build_workflow(row.id, store.workflow_skeletons(row.id), settled_at=row.settled_at)
        skipped = [n for n in page.nodes if n.state is TaskState.SKIPPED]
        assert len(skipped) == 1, scenario
        stopper = next(n for n in page.nodes if n.id == skipped[0].skipped_by)
        assert stopper.name in ("t.rejector", "t.ignorer")
        assert skipped[0].skipped_reason and stopper.id in skipped[0].skipped_reason
        store.expire(NOW + 10**9, 1.0, 1.0)  # empty the store for the next scenario


@pytest.mark.parametrize("failed", [None, 150])
def test_a_big_chord_agrees_whichever_member_stops_it(store: SqlStore, failed: int | None) -> None:
    """300 header members carry one canvas (the callback): the list reads one of them for the
    design, plus every member that stops; list and page must still agree on the callback."""
    from server_events import EventFactory  # tests/unit/server, on the path (conftest)

    f = EventFactory(t0=NOW)
    body = {"type": "task", "id": "body", "name": "t.tsum", "group_id": None, "group_index": None}
    canvas = {"chain": [], "chord": body, "callbacks": [], "errbacks": []}
    events = []
    for i in range(300):
        tid, at = f"m-{i:03d}", 1.0 + i
        events.append(f.event("task.published", tid, "t.add", at, root_id=tid, group_id="G", group_index=i,
                              canvas=canvas, retries=0))  # fmt: skip
        events.append(f.event("task.started", tid, "t.add", at + 0.5))
        if i == failed:
            events.append(f.event("task.failed", tid, "t.add", at + 0.7, exception_type="ValueError"))
        else:
            events.append(f.event("task.succeeded", tid, "t.add", at + 0.7, runtime=0.2))
    random.Random(3).shuffle(events)
    for start in range(0, len(events), 100):
        store.apply(events[start : start + 100], {}, NOW)
        assert disagreements(store) == [], start
    (row,) = store.list_workflows(WorkflowQuery(limit=10)).items
    page = build_workflow(row.id, store.workflow_skeletons(row.id))
    callback = next(n for n in page.nodes if n.id == "body")
    if failed is None:
        assert (row.state, row.task_count, callback.state) == ("RUNNING", 301, TaskState.PLANNED)
    else:
        assert (row.state, row.task_count, callback.state) == ("FAILURE", 301, TaskState.SKIPPED)
        assert callback.skipped_by == f"m-{failed:03d}"
