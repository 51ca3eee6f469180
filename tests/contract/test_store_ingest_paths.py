"""Ingest's batch-level shortcuts give what the plain path gives, on both engines.

* Every workflow a batch touches is summarised once the batch's task rows are written
  (``write.roll_up``). Over any split of a real event stream into batches, every
  workflow row must equal what ``roll_up`` computes again from the stored tasks.
* The ingest loop plans a batch (``Store.prepare``) while the previous one is still
  being written, and reads what is stored only once that one committed: the result
  must be the plain path's.
* PostgreSQL inserts a batch as one ``unnest`` of column arrays; a column whose values
  mix Python types cannot travel as an array and falls back to one row at a time.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any, cast

import pytest

from stemtrace.core.events import Event, Source, decode_event
from stemtrace.core.task import fold_task
from stemtrace.server.store import SqlStore, TaskQuery
from stemtrace.server.store.summary import roll_up
from stemtrace.server.store.write import BatchWriter

FIXTURES = sorted((Path(__file__).parents[1] / "golden" / "fixtures").glob("*.json"))
NOW = 1_790_200_000.0


def load(path: Path) -> list[Event]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [decode_event(r) for r in raw]


def workflow_ids(store: SqlStore) -> set[str]:
    return {row.workflow_id for row in store.list_tasks(TaskQuery(limit=1000)).items if row.workflow_id}


def summaries(store: SqlStore, ids: set[str]) -> dict[str, Any]:
    out = {}
    for wf in sorted(ids):
        row = store.get_workflow(wf)
        assert row is not None, wf
        out[wf] = dataclasses.replace(row, version=0)  # the version counts writes, not content
    return out


def assert_equal_to_sql_roll_up(store: SqlStore, label: str) -> None:
    ids = workflow_ids(store)
    fast = summaries(store, ids)

    def recompute(conn: Any) -> None:
        roll_up(BatchWriter(conn, store.dialect, NOW), sorted(ids))

    store._write(recompute)
    assert summaries(store, ids) == fast, label


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_workflow_summaries_equal_the_sql_roll_up(store: SqlStore, fixture: Path) -> None:
    events = load(fixture)
    # One batch into an empty store: every workflow is new, summarised from the batch alone.
    store.apply(events, {}, NOW)
    assert_equal_to_sql_roll_up(store, f"{fixture.stem} in one batch")
    # Then splits in any order over what is stored (redeliveries, mostly the SQL path).
    for seed in range(3):
        rnd = random.Random(f"{fixture.stem}-{seed}")
        shuffled = events[:]
        rnd.shuffle(shuffled)
        i = 0
        while i < len(shuffled):
            n = rnd.randint(1, max(1, len(shuffled) // 3))
            store.apply(shuffled[i : i + n], {}, NOW)
            i += n
        assert_equal_to_sql_roll_up(store, f"{fixture.stem} seed {seed}")


@pytest.mark.parametrize("seed", range(4))
def test_fresh_workflows_in_split_batches_equal_the_sql_roll_up(store: SqlStore, seed: int) -> None:
    """Whole workflows per batch, several per batch: each summarised once, from its batch."""
    rnd = random.Random(seed)
    fixtures = FIXTURES[:]
    rnd.shuffle(fixtures)
    for start in range(0, len(fixtures), 3):
        batch = [e for path in fixtures[start : start + 3] for e in load(path)]
        rnd.shuffle(batch)  # every recording has its own task ids
        store.apply(batch, {}, NOW)
    assert_equal_to_sql_roll_up(store, f"seed {seed}")


def _task_event(seq: int, tid: str, etype: str, **data: Any) -> Event:
    return Event(etype, NOW + seq, Source("h", 1, "inst-mixed", seq, "child", "w1@h"), tid, "proj.t", data)


def test_mixed_python_types_in_a_column_are_stored(store: SqlStore) -> None:
    """A sender's odd value (an int root_id next to string ones) takes the row-by-row path."""
    events = [
        _task_event(1, "t-int", "task.published", root_id=12345, retries=0),
        _task_event(2, "t-str", "task.published", root_id="t-str", retries=0),
        _task_event(3, "t-str", "task.started", retries=0),
    ]
    result = store.apply(events, {}, NOW)
    assert result.stored == 3
    odd = store.get_task("t-int")
    # The record keeps the sender's int, whatever the field's declared type says.
    assert odd is not None and cast(object, odd.record.root_id) == 12345
    assert odd.row.root_id == "12345"  # a TEXT column, on both engines
    plain = store.get_task("t-str")
    assert plain is not None and plain.record.root_id == "t-str" and plain.record.state.value == "STARTED"
    assert store.apply(events, {}, NOW).stored == 0  # still exactly once


def test_fresh_workflow_named_after_its_first_task_when_its_root_is_unseen(store: SqlStore) -> None:
    """The workflow id is a root no event came from: its name is its earliest task's."""
    events = [
        _task_event(10, "late-child", "task.published", root_id="ghost", parent_id="ghost", retries=0),
        _task_event(1, "early-child", "task.published", root_id="ghost", parent_id="ghost", retries=0),
    ]
    events[0] = dataclasses.replace(events[0], task_name="proj.late")
    events[1] = dataclasses.replace(events[1], task_name="proj.early")
    store.apply(events, {}, NOW)
    row = store.get_workflow("ghost")
    assert row is not None and row.name == "proj.early" and row.task_count == 2
    assert_equal_to_sql_roll_up(store, "unseen root")


@pytest.mark.parametrize("fixture", FIXTURES[:6], ids=lambda p: p.stem)
def test_pipelined_ingest_equals_the_plain_path(store: SqlStore, fixture: Path) -> None:
    """What the ingest loop does: batch N+1 is planned (``prepare``) while batch N is still
    being written on the commit thread, then staged once N committed. Every task must equal
    the full fold, every workflow the SQL roll-up, every event be stored exactly once."""
    events = load(fixture)
    rnd = random.Random(fixture.stem)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    batches = []
    i = 0
    while i < len(shuffled):
        n = rnd.randint(1, max(1, len(shuffled) // 4))
        batches.append(shuffled[i : i + n] + rnd.sample(events, min(2, len(events))))  # redeliveries
        i += n
    stored = 0
    pending = None
    for batch in batches:
        prepared = store.prepare(batch)
        if pending is not None:
            stored += pending.result().stored
        pending = store.apply_begin(batch, {}, NOW, prepared=prepared)
    assert pending is not None
    stored += pending.result().stored
    assert stored == len({e.key for e in events})
    for tid in {e.task_id for e in events if e.task_id}:
        detail = store.get_task(tid)
        assert detail is not None, tid
        assert detail.record == fold_task(tid, [e for e in events if e.task_id == tid]), tid
    assert_equal_to_sql_roll_up(store, f"{fixture.stem} pipelined")


def test_stored_workflow_renamed_by_an_earlier_task_in_a_later_batch(store: SqlStore) -> None:
    """The workflow's id is a root no event came from, so its name is its earliest task's:
    a batch that brings an earlier task renames the stored workflow, one that brings a
    later task does not."""

    def child(seq: int, tid: str, name: str) -> Event:
        e = _task_event(seq, tid, "task.published", root_id="ghost", parent_id="ghost", retries=0)
        return dataclasses.replace(e, task_name=name)

    store.apply([child(10, "middle", "proj.middle")], {}, NOW)
    store.apply([child(20, "late", "proj.late")], {}, NOW)
    row = store.get_workflow("ghost")
    assert row is not None and row.name == "proj.middle" and row.task_count == 2
    store.apply([child(1, "early", "proj.early")], {}, NOW)
    row = store.get_workflow("ghost")
    assert row is not None and row.name == "proj.early" and row.task_count == 3
    assert_equal_to_sql_roll_up(store, "renamed by an earlier task")


def test_roll_up_after_a_batch_that_rewrites_many_stored_tasks(store: SqlStore) -> None:
    """A batch that rewrites every stored task of several workflows, and brings an earlier
    task to each: every summary counts each task once and is renamed by the earlier task."""

    def published(seq: int, tid: str, root: str) -> Event:
        e = _task_event(seq, tid, "task.published", root_id=root, parent_id=root, retries=0)
        return dataclasses.replace(e, task_name=f"proj.{tid}")

    roots = [f"root{r}" for r in range(4)]
    sizes = {"root0": 30, "root1": 2, "root2": 1, "root3": 5}  # root0 is scanned at both bounds
    first = [
        published(r * 100 + i + 10, f"{root}-t{i}", root)
        for r, root in enumerate(roots)
        for i in range(sizes[root])
    ]
    store.apply(first, {}, NOW)
    # Every task again (started), plus one earlier task per workflow that renames it.
    again = [_task_event(1000 + i, e.task_id or "", "task.started", retries=0) for i, e in enumerate(first)]
    again += [published(r, f"{root}-early", root) for r, root in enumerate(roots)]
    plan = store.prepare(again)
    store.apply_begin(again, {}, NOW, prepared=plan).result()
    for root in roots:
        row = store.get_workflow(root)
        assert row is not None and row.task_count == sizes[root] + 1, root
        assert row.name == f"proj.{root}-early", root
    assert_equal_to_sql_roll_up(store, "rewritten")
