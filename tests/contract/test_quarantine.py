"""Quarantine on both engines: a batch the store refuses is split down to the events it refuses
alone; those are counted in the bounded quarantine table and everything else is stored."""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.server.quarantine import Quarantined, is_data_error, salvage
from stemtrace.server.store import SqlStore, StoreError, TaskQuery

NOW = 1_790_100_000.0


def poisoned(e: Event, how: str) -> Event:
    if how == "surrogate id":
        return replace(e, task_id="bad-\udc80")
    return replace(e, src=replace(e.src, seq=2**64 + 7))  # past BIGINT


@pytest.mark.parametrize("how", ["surrogate id", "seq past 64 bits"])
def test_a_refused_batch_is_split_down_to_the_refused_events(store: SqlStore, how: str) -> None:
    f = EventFactory()
    events: list[Event] = []
    for i in range(40):
        events += f.run(f"t-{i:02d}", "proj.add", i * 0.01)
    bad = [poisoned(events[9], how), poisoned(events[101], how)]
    batch = [*events[:50], bad[0], *events[50:120], bad[1], *events[120:]]
    with pytest.raises(Exception) as refused:  # what ingest used to retry forever
        store.apply(batch, {}, NOW)
    assert is_data_error(refused.value), refused.value
    result = salvage(store, batch, {"bad_version": 2}, NOW)
    assert result.stored == len(events)
    assert [q.reason for q in result.quarantined] == ["store_rejected", "store_rejected"]
    assert all(q.kind == "task.published" or q.kind.startswith("task.") for q in result.quarantined)
    assert len(store.list_tasks(TaskQuery(limit=100)).items) == 40
    assert store.counters()["malformed"] == {"bad_version": 2}
    assert result.merged_changes().tasks == {f"t-{i:02d}" for i in range(40)}


def test_quarantine_rows_count_per_reason_and_kind(store: SqlStore) -> None:
    e = EventFactory().event("task.started", "t-1", "proj.add")
    entries = [Quarantined.of_event("bad_id", e, f"detail {i}") for i in range(5)]
    entries.append(Quarantined.of_payload("undecodable", b"[" * 5000, "RecursionError"))
    store.record_quarantine(entries, NOW)
    store.record_quarantine(entries[:2], NOW + 10)
    rows = {(q["reason"], q["kind"]): q for q in store.quarantine()}
    assert set(rows) == {("bad_id", "task.started"), ("undecodable", "message")}
    assert rows["bad_id", "task.started"]["count"] == 7
    assert rows["bad_id", "task.started"]["first_seen"] == NOW
    assert rows["bad_id", "task.started"]["last_seen"] == NOW + 10
    assert rows["bad_id", "task.started"]["detail"] == "detail 1"
    assert rows["undecodable", "message"]["sample"] == "[" * 2048
    counters = store.counters()
    assert counters["quarantined"] == {"bad_id": 7, "undecodable": 1}
    assert counters["last_quarantined_at"] == NOW + 10


def test_store_faults_are_not_data_errors() -> None:
    import sqlite3

    assert not is_data_error(StoreError("gone"))
    assert not is_data_error(sqlite3.OperationalError("database or disk is full"))
    assert not is_data_error(OSError(28, "No space left on device"))
    assert is_data_error(UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed"))
    assert is_data_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
