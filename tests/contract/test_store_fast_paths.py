"""The store's shortcuts give exactly what the slow, obviously-right path gives.

* Ingest folds a task from its batch alone when the task has no stored row, and
  re-reads stored events only for known tasks: over any split of a real event
  stream into batches, delivered in any order, every stored record must equal
  ``fold_task`` over all of that task's events.
* The workflow graph is built from skeleton records (columns + ``graph``): it must
  equal the graph built from the full records.

The streams are the golden fixtures, recorded from real Celery workers.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemtrace.core.events import Event, decode_event
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store import SqlStore, TaskQuery, open_store

FIXTURES = sorted((Path(__file__).parents[1] / "golden" / "fixtures").glob("*.json"))
NOW = 1_790_100_000.0


def load(path: Path) -> list[Event]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [decode_event(r) for r in raw]


def apply_in_batches(store: SqlStore, events: list[Event], rnd: random.Random) -> None:
    shuffled = events[:]
    rnd.shuffle(shuffled)
    i = 0
    while i < len(shuffled):
        n = rnd.randint(1, max(1, len(shuffled) // 2))
        batch = shuffled[i : i + n]
        if rnd.random() < 0.3:
            batch = batch + rnd.sample(events, min(3, len(events)))  # redeliveries
        store.apply(batch, {}, NOW + i)
        i += n


def check_against_full_fold(store: SqlStore, events: list[Event]) -> None:
    by_task: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.task_id:
            by_task[e.task_id].append(e)
    for tid, evs in by_task.items():
        detail = store.get_task(tid)
        assert detail is not None, tid
        assert detail.record == fold_task(tid, evs), tid
    workflows = {row.workflow_id for row in store.list_tasks(TaskQuery(limit=1000)).items}
    for wf in workflows:
        assert wf is not None
        for plumbing in (False, True):
            full = build_workflow(wf, store.workflow_records(wf), show_plumbing=plumbing)
            fast = build_workflow(wf, store.workflow_skeletons(wf), show_plumbing=plumbing)
            assert fast == full, (wf, plumbing)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_batched_shuffled_ingest_equals_full_fold(store: SqlStore, fixture: Path) -> None:
    """On both engines: one random split and order per fixture (seeded, reproducible)."""
    events = load(fixture)
    apply_in_batches(store, events, random.Random(fixture.stem))
    check_against_full_fold(store, events)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_split_and_order_equals_full_fold(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    """Many splits and orders over every fixture, on SQLite (fast enough for hypothesis)."""
    fixture = data.draw(st.sampled_from(FIXTURES), label="fixture")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fast') / 's.db'}")
    try:
        events = load(fixture)
        apply_in_batches(store, events, random.Random(seed))
        check_against_full_fold(store, events)
    finally:
        store.close()
