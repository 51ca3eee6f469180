"""Retention on both engines: every table expires, ``--max-tasks`` evicts in order, SQLite
gives the space back, and a store keeps one identity for all its replicas."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from server_events import EventFactory

from stemtrace.server.maintenance import Maintenance
from stemtrace.server.store import SqlStore, TaskQuery, open_store

NOW = 1_790_100_000.0
DAY = 86400.0
TABLES = ("tasks", "aliases", "workflows", "workers", "library_health")


def counts(store: SqlStore) -> dict[str, int]:
    with store.pool.connection() as conn:
        return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}


def fill(store: SqlStore, f: EventFactory, at: float, now: float, prefix: str) -> None:
    """A chain of two tasks (the second in a group: its id is an alias, the tasks' are their
    rows), a worker and the library's health counters, as of ``at``."""
    store.apply(
        [
            f.event("worker.online", None, None, at, hostname=f"{prefix}@h"),
            *f.run(f"{prefix}-1", "proj.t", at, worker=f"{prefix}@h"),
            *f.run(
                f"{prefix}-2",
                "proj.t",
                at + 1,
                parent_id=f"{prefix}-1",
                root_id=f"{prefix}-1",
                group_id=f"{prefix}-g",
                group_index=0,
            ),
            *f.run(f"{prefix}-3", "proj.t", at + 2, parent_id=f"{prefix}-1", root_id=f"{prefix}-1"),
            f.event("library.health", None, None, at, sent=10, dropped=0, errors=0),
        ],
        {},
        now,
    )


def test_retention_expires_every_table(store: SqlStore) -> None:
    old, new = EventFactory(t0=NOW - 40 * DAY), EventFactory(t0=NOW - 60)
    fill(store, old, 0, NOW - 40 * DAY, "old")
    fill(store, new, 0, NOW - 60, "new")
    before = counts(store)
    assert all(before[t] >= 2 for t in TABLES), before

    m = Maintenance(
        store, retention=7 * DAY, failure_retention=30 * DAY, heartbeat_interval=30, clock=lambda: NOW
    )
    m.run_once()

    after = counts(store)
    # What is left is exactly the new workflow, its worker and its library process.
    assert after == {
        "tasks": 3,
        "aliases": before["aliases"] // 2,
        "workflows": 1,
        "workers": 1,
        "library_health": 1,
    }, (before, after)
    assert {t.id for t in store.list_tasks(TaskQuery()).items} == {"new-1", "new-2", "new-3"}
    assert [w["hostname"] for w in store.list_workers()] == ["new@h"]
    assert m.expired == 1 and not m.behind


def test_retention_deletes_in_batches_until_caught_up(store: SqlStore) -> None:
    f = EventFactory(t0=NOW - 10 * DAY)
    events = [e for i in range(1200) for e in f.run(f"t{i}", "proj.t", i)]
    store.apply(events, {}, NOW - 10 * DAY)
    m = Maintenance(
        store, retention=7 * DAY, failure_retention=30 * DAY, heartbeat_interval=30, clock=lambda: NOW
    )
    m.run_once()
    assert m.expired == 1200 and not m.behind
    assert counts(store)["tasks"] == 0 and counts(store)["aliases"] == 0


def test_failures_outlive_successes_and_a_success_never_waits_behind_them(store: SqlStore) -> None:
    f = EventFactory(t0=NOW - 20 * DAY)
    store.apply(f.run("bad-old", "proj.t", 0, fail=True), {}, NOW - 20 * DAY)
    store.apply(f.run("ok-newer", "proj.t", 1), {}, NOW - 10 * DAY)
    # One workflow per transaction: the success behind the older failure still goes now.
    assert store.expire(NOW, 7 * DAY, 30 * DAY, batch=1) == 1
    assert store.get_task("ok-newer") is None and store.get_task("bad-old") is not None
    assert store.expire(NOW, 7 * DAY, 30 * DAY, batch=1) == 0
    assert store.expire(NOW + 11 * DAY, 7 * DAY, 30 * DAY) == 1
    assert counts(store)["workflows"] == 0


def test_max_tasks_evicts_oldest_first_successes_before_failures(store: SqlStore) -> None:
    f = EventFactory(t0=NOW)
    store.apply(f.run("ok-1", "proj.t", 0), {}, NOW + 1)
    store.apply(f.run("bad-2", "proj.t", 1, fail=True), {}, NOW + 2)
    store.apply(f.run("ok-3", "proj.t", 2), {}, NOW + 3)
    store.apply(f.run("bad-4", "proj.t", 3, fail=True), {}, NOW + 4)
    store.apply(f.run("ok-5", "proj.t", 4), {}, NOW + 5)

    def left() -> set[str]:
        return {t.id for t in store.list_tasks(TaskQuery()).items}

    m = Maintenance(
        store,
        retention=7 * DAY,
        failure_retention=30 * DAY,
        heartbeat_interval=30,
        max_tasks=3,
        clock=lambda: NOW,
    )
    m.run_once()
    assert left() == {"bad-2", "bad-4", "ok-5"} and m.evicted == 2
    assert store.evict(2) == 1
    assert left() == {"bad-2", "bad-4"}
    assert store.evict(1) == 1  # no success left: the oldest failure goes
    assert left() == {"bad-4"}
    assert store.evict(1) == 0


def test_the_store_id_is_made_once_and_shared_by_replicas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    first = open_store(url)
    replica = open_store(url)
    other = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        sid = first.store_id()
        assert len(sid) == 32 and replica.store_id() == sid
        assert other.store_id() != sid
    finally:
        for s in (first, replica, other):
            s.close()
    again = open_store(url)
    try:
        assert again.store_id() == sid
    finally:
        again.close()


def test_the_store_id_survives_on_both_engines(store: SqlStore) -> None:
    sid = store.store_id()
    again = open_store(store.url)
    try:
        assert again.store_id() == sid
    finally:
        again.close()


def _size(path: Path) -> int:
    wal = Path(str(path) + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_sqlite_file_shrinks_after_a_large_delete(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    store = open_store(f"sqlite:///{path}")
    try:
        f = EventFactory(t0=NOW - 10 * DAY)
        blob = os.urandom(1500).hex()  # 3 KB of arguments a task, as a real payload might carry
        for start in range(0, 6000, 1000):
            events = [e for i in range(start, start + 1000) for e in f.run(f"t{i}", "proj.t", i, args=[blob])]
            store.apply(events, {}, NOW - 10 * DAY)
        store.apply(EventFactory(t0=NOW).run("keep", "proj.t"), {}, NOW)
        full = _size(path)
        assert full > 20_000_000, full

        m = Maintenance(
            store, retention=7 * DAY, failure_retention=30 * DAY, heartbeat_interval=30, clock=lambda: NOW
        )
        m.run_once()
        assert m.expired == 6000 and m.reclaimed_pages > 0
        shrunk = _size(path)
        assert shrunk < full / 4, (full, shrunk)
        assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
        assert store.get_task("keep") is not None
    finally:
        store.close()


def test_postgresql_reuses_expired_space_even_with_autovacuum_off(pg_dsn: str, unique_name: str) -> None:
    """Expired rows' space is reused by the next ones: maintenance vacuums the tables with many
    dead rows (this test turns autovacuum off on them, whatever the instance's setting)."""
    import psycopg

    store = open_store(f"{pg_dsn}?schema={unique_name}")
    try:
        with store.pool.connection() as conn:
            for table in TABLES:
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")

        def size() -> int:
            with store.pool.connection() as conn:
                return sum(
                    int(conn.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0]) for t in TABLES
                )

        blob = os.urandom(500).hex()
        sizes = []
        for round_ in range(4):  # each round's tasks expire before the next round's arrive
            at = NOW - (10 - round_) * DAY
            f = EventFactory(t0=at)
            for start in range(0, 3000, 1000):
                events = [
                    e
                    for i in range(start, start + 1000)
                    for e in f.run(f"r{round_}-{i}", "proj.t", i, args=[blob])
                ]
                store.apply(events, {}, at)
            sizes.append(size())
            m = Maintenance(
                store,
                retention=DAY / 2,
                failure_retention=DAY / 2,
                heartbeat_interval=30,
                clock=functools.partial(float.__add__, at, DAY),
            )
            for _ in range(5):  # a round stops at its time budget; on a busy machine one may not do all
                m.run_once()
                if m.expired >= 3000:
                    break
            assert m.expired == 3000
            # The dead rows reach pg_stat_user_tables about a second after the deletes commit;
            # the server's maintenance vacuums on its next minute, here a moment later.
            time.sleep(1.5)
            store.reclaim()
        # Without the vacuum every round adds its own space (4x the first); with it the later
        # rounds fit in what the first left.
        assert sizes[3] < sizes[0] * 1.5, sizes
    finally:
        store.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
