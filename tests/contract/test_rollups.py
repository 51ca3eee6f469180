"""Roll-ups maintained at ingest (``store/rollups.py``) equal a scan of the tasks they count,
however the events arrive: out of order, duplicated, split over many batches, retried, through
several event sources (``--source``), each key of a roll-up carrying its source.

The expected values are computed here from the ``tasks`` table's columns with code of its
own, never with the module's ``contribution``.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from server_events import EventFactory

from stemtrace.core.events import Event, decode_event
from stemtrace.core.rollup import PLUMBING_NAMES
from stemtrace.server.store import SqlStore
from stemtrace.server.store.rollups import BOUNDS, COUNTS, NB

NOW = 1_790_000_500.0
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FAILED = {"FAILURE", "LOST", "REJECTED"}


def _q(store: SqlStore, text: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with store._read() as r:
        rows: list[tuple[Any, ...]] = r.q(text, params or [])
    return rows


def _le(seconds: float) -> int:
    return next((i for i, b in enumerate(BOUNDS) if seconds <= b), NB - 1)


def scan(store: SqlStore) -> dict[str, Any]:
    """What the roll-ups should hold, from the tasks table."""
    hours: dict[tuple[str, str, int, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    names: dict[tuple[str, str], int] = defaultdict(int)
    failures: dict[tuple[str, str, int, str], int] = defaultdict(int)
    for name, state, queue, sort_ts, sent, received, started, runtime_ms, exc, retries, source in _q(
        store,
        "SELECT name, state, queue, sort_ts, sent_at, received_at, started_at, runtime_ms, exception_type, "
        "retries, source FROM tasks",
    ):
        hour = math.floor(sort_ts / 3600)
        if state in FAILED:
            failures[(name or "", exc or "", hour, source)] += 1
        if name is None:
            continue
        names[(name, source)] += 1
        h = hours[(name, queue or "", hour, source)]
        h["tasks"] += 1
        h["sent"] += sent is not None
        h["received"] += received is not None
        h["started"] += started is not None
        h["succeeded"] += state == "SUCCESS"
        h["failed"] += state == "FAILURE"
        h["revoked"] += state == "REVOKED"
        h["rejected"] += state == "REJECTED"
        h["lost"] += state == "LOST"
        h["retried"] += retries or 0
        h["retried_tasks"] += bool(retries)
        if runtime_ms is not None:
            h[f"rt{_le(runtime_ms / 1000)}"] += 1
        if started is not None and sent is not None:
            h[f"qw{_le(max(started - sent, 0.0))}"] += 1
    return {
        "hours": {k: {c: v for c, v in h.items() if v} for k, h in hours.items()},
        "names": dict(names),
        "failures": dict(failures),
        "tasks": sum(names.values()) + sum(1 for (n,) in _q(store, "SELECT name FROM tasks") if n is None),
    }


def rolled(store: SqlStore) -> dict[str, Any]:
    cols = [*COUNTS, *(f"rt{i}" for i in range(NB)), *(f"qw{i}" for i in range(NB))]
    hours = {}
    for row in _q(store, f"SELECT name, queue, hour, source, {', '.join(cols)} FROM rollup_hours"):
        values = {c: float(v) for c, v in zip(cols, row[4:], strict=True) if v}
        if values:
            hours[(row[0], row[1], int(row[2]), row[3])] = values
    return {
        "hours": hours,
        "names": {
            (n, s): int(c) for n, s, c in _q(store, "SELECT name, source, count FROM rollup_names") if c
        },
        "failures": {
            (n, e, int(h), s): int(c)
            for n, e, h, s, c in _q(
                store, "SELECT name, exception_type, hour, source, count FROM rollup_failures"
            )
            if c
        },
        "tasks": int(_q(store, "SELECT count FROM store_counts WHERE key = 'tasks'")[0][0]),
    }


def _batches(events: list[Event], rng: random.Random) -> list[list[Event]]:
    """The events shuffled, some sent twice, cut into batches of random sizes."""
    events = list(events)
    events += rng.sample(events, k=len(events) // 3)  # redelivered duplicates
    rng.shuffle(events)
    out = []
    while events:
        n = rng.randint(1, 25)
        out.append(events[:n])
        events = events[n:]
    return out


def test_out_of_order_and_duplicate_events_are_counted_once(store: SqlStore) -> None:
    f = EventFactory()
    events: list[Event] = []
    for i in range(12):
        events += f.run(f"ok{i}", "proj.add", i * 700.0, queue="fast")  # spans several hours
    for i in range(4):
        events += f.run(f"bad{i}", "proj.add", 50 + i, fail=True, queue="fast")
    events += f.run("other", "proj.mul", 5000.0)
    rng = random.Random(7)
    for batch in _batches(events, rng):
        store.apply(batch, {}, NOW)
    # A whole replay of the same stream changes nothing.
    store.apply(events, {}, NOW)
    assert rolled(store) == scan(store)
    assert rolled(store)["names"] == {("proj.add", ""): 16, ("proj.mul", ""): 1}
    [group] = store.failures(None, None, None, 10)
    assert (group["name"], group["exception_type"], group["count"]) == ("proj.add", "ValueError", 4)
    assert group["last_task_id"].startswith("bad")
    stats = {s["name"]: s for s in store.task_stats(f.t0 - 3600, f.t0 + 20000, None, 24)}
    assert (stats["proj.add"]["total"], stats["proj.add"]["succeeded"], stats["proj.add"]["failed"]) == (
        16,
        12,
        4,
    )
    assert sum(p["succeeded"] for p in stats["proj.add"]["series"]) == 12
    assert store.task_names() == [("proj.add", 16), ("proj.mul", 1)]
    assert store.counters()["workflows"] == int(_q(store, "SELECT COUNT(*) FROM workflows")[0][0])


def test_retries_count_each_attempt_once_and_outcomes_move(store: SqlStore) -> None:
    f = EventFactory()
    first = [
        f.event("task.published", "r", "proj.flaky", 0, root_id="r"),
        f.event("task.received", "r", "proj.flaky", 1),
        f.event("task.started", "r", "proj.flaky", 2),
        f.event("task.retried", "r", "proj.flaky", 3, exception_type="IOError"),
    ]
    second = [
        f.event("task.received", "r", "proj.flaky", 4),
        f.event("task.started", "r", "proj.flaky", 5),
        f.event("task.succeeded", "r", "proj.flaky", 6, runtime=0.02),
    ]
    store.apply(second, {}, NOW)  # the later attempt first
    store.apply(first, {}, NOW)
    store.apply(first + second, {}, NOW)  # and everything again
    assert rolled(store) == scan(store)
    totals = store.task_metrics(NOW).totals
    [(name, _queue, _first, values, _source)] = totals
    assert name == "proj.flaky"
    assert values["succeeded"] == 1 and values["tasks"] == 1
    assert values["retried"] == scan(store)["hours"][next(iter(scan(store)["hours"]))].get("retried", 0)


def _golden() -> list[Path]:
    return sorted((GOLDEN / "fixtures").glob("*.json")) + sorted((GOLDEN / "fixtures_extra").glob("*.json"))


SOURCES = ("", "orders", "billing")


@pytest.mark.parametrize("seed", [1, 2])
def test_golden_recordings_roll_up_to_a_scan_of_their_tasks(store: SqlStore, seed: int) -> None:
    """Every recording of real Celery runs, replayed shuffled, duplicated and split, each through
    one of three event sources (one unlabelled), a few batches through another one (a task's
    source then moves, or stays when the batch is unlabelled, as the row's does)."""
    rng = random.Random(seed)
    for i, path in enumerate(_golden()):
        raw = json.loads(path.read_text())
        events = [decode_event(e) for e in (raw["events"] if isinstance(raw, dict) else raw)]
        for batch in _batches(events, rng):
            source = SOURCES[i % 3] if rng.random() > 0.1 else rng.choice(SOURCES)
            store.apply(batch, {}, NOW, source)
    expected = scan(store)
    assert {s for (_n, s) in expected["names"]} == set(SOURCES)
    got = rolled(store)
    assert got["names"] == expected["names"]
    assert got["failures"] == expected["failures"]
    assert got["tasks"] == expected["tasks"]
    assert got["hours"] == expected["hours"]
    assert expected["failures"], "the recordings hold failures"
    _scoped_reads_agree(store, expected)
    # The never-expiring totals the counters read count every task once too, whatever labels
    # the task had when each transition was counted; an outcome that moved (LOST, then a late
    # success) stays counted, so the totals can only be above the scan, never below.
    totals: dict[str, float] = defaultdict(float)
    for _name, _q2, _first, values, _source in store.task_metrics(NOW).totals:
        for col, v in values.items():
            totals[col] += v
    scanned: dict[str, float] = defaultdict(float)
    for h in expected["hours"].values():
        for col, v in h.items():
            scanned[col] += v
    assert totals["tasks"] == scanned["tasks"]
    for col in ("sent", "received", "started", "succeeded", "failed", "retried"):
        assert totals[col] >= scanned[col], col


def _scoped_reads_agree(store: SqlStore, expected: dict[str, Any]) -> None:
    """The aggregate reads scoped to each source (``source=``) say what the scan says of it."""
    for source in SOURCES:
        names: dict[str, int] = defaultdict(int)
        for (n, s), c in expected["names"].items():
            if s == source:
                names[n] += c
        assert dict(store.task_names(source)) == dict(names), source
        groups: dict[tuple[str, str], int] = defaultdict(int)
        for (n, e, _h, s), c in expected["failures"].items():
            if s == source and n not in PLUMBING_NAMES:
                groups[(n, e)] += c
        got = store.failures(None, None, None, 1000, source=source)
        assert {(g["name"] or "", g["exception_type"] or ""): g["count"] for g in got} == dict(groups)
        totals: dict[str, int] = defaultdict(int)
        for (n, _q2, _h, s), h in expected["hours"].items():
            if s == source and n not in PLUMBING_NAMES:
                totals[n] += int(h.get("tasks", 0))
        stats = store.task_stats(0.0, NOW * 2, None, 1, source=source)
        assert {r["name"]: r["total"] for r in stats} == {n: c for n, c in totals.items() if c}
    everywhere = store.task_names()
    assert sum(c for _n, c in everywhere) == sum(expected["names"].values())


def test_retention_expires_hourly_rows_and_keeps_the_totals(store: SqlStore) -> None:
    f = EventFactory(t0=NOW - 10 * 86400)
    store.apply(f.run("old", "proj.old", 0, fail=True), {}, NOW - 10 * 86400)
    g = EventFactory(t0=NOW - 60)
    store.apply(g.run("new", "proj.new", 0), {}, NOW)
    assert store.task_names() == [("proj.new", 1), ("proj.old", 1)]
    store.expire(NOW, retention=7 * 86400, failure_retention=7 * 86400)
    assert store.task_names() == [("proj.new", 1)]
    assert store.failures(None, None, None, 10) == []
    assert _q(store, "SELECT COUNT(*) FROM rollup_hours WHERE name = 'proj.old'")[0][0] == 0
    # The counters' totals outlive retention: Prometheus counters never go down.
    assert {n for n, _q2, _f, _v, _s in store.task_metrics(NOW).totals} == {"proj.new", "proj.old"}
    assert rolled(store)["tasks"] == 1  # the old task's row is gone, and counted out
    assert store.counters()["workflows"] == 1


def test_a_store_from_before_the_rollups_is_backfilled(store: SqlStore) -> None:
    f = EventFactory()
    for i in range(5):
        store.apply(f.run(f"t{i}", "proj.t", i, fail=i == 0), {}, NOW)
    before = rolled(store)
    with store.writers.connection() as conn:
        for table in (
            "rollup_hours",
            "rollup_names",
            "rollup_failures",
            "rollup_totals",
            "rollup_failed_totals",
        ):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE store_counts SET count = 0 WHERE key = 'tasks'")
        from stemtrace.server.store import rollups_schema

        rollups_schema.backfill(conn, store.dialect)
        conn.commit()
    assert rolled(store) == before == scan(store)


def test_failure_groups_are_exact_for_any_range(store: SqlStore) -> None:
    """Whole hours from the roll-up, the partial hours at the edges from the tasks in them."""
    f = EventFactory(t0=1_790_000_000.0)
    events: list[Event] = []
    for i in range(40):
        events += f.run(f"x{i}", "proj.x" if i % 3 else "proj.y", i * 437.0, fail=i % 2 == 0)
    store.apply(events, {}, NOW)
    rows = _q(store, "SELECT name, sort_ts, id FROM tasks WHERE state = 'FAILURE'")
    rng = random.Random(3)
    cases: list[tuple[float | None, float | None]] = [(None, None), (f.t0 + 100, None), (None, f.t0 + 9000)]
    cases += [tuple(sorted(rng.uniform(f.t0 - 600, f.t0 + 18000) for _ in range(2))) for _ in range(30)]  # type: ignore[misc]
    for since, until in cases:
        want: dict[str, list[Any]] = {}
        for name, ts, tid in rows:
            if (since is None or ts >= since) and (until is None or ts < until):
                w = want.setdefault(name, [0, None, ""])
                w[0] += 1
                if w[1] is None or ts > w[1]:
                    w[1], w[2] = ts, tid
        got = {g["name"]: g for g in store.failures(since, until, None, 100)}
        assert {n: g["count"] for n, g in got.items()} == {n: w[0] for n, w in want.items()}, (since, until)
        assert {n: g["last_task_id"] for n, g in got.items()} == {n: w[2] for n, w in want.items()}
        assert all(g["sample_message"] == "ValueError('bad')" for g in got.values())
