"""Retention in SQL: what expires, in which order, and how the space comes back.

Everything here runs in short write transactions on the store's writer connection, so
ingest waits at most one of them. Each statement is a range scan on an index:

- workflows by ``workflows_expiry (has_failure, ingested_at)``: successes and failures
  have their own cutoffs, and a success never waits behind the failures kept longer;
- their tasks, events and aliases by ``workflow_id`` (``tasks_workflow``,
  ``events_task``, ``aliases_workflow``), a chunk of workflows per statement rather
  than four statements per workflow (at 1,000 tasks/s the per-workflow loop fell behind);
- ``workers`` by ``last_seen`` and ``library_health`` by ``ts``, so no table grows forever.

``--max-tasks`` evicts whole workflows, oldest (by last event) first, successes before
failures: a workflow's graph is never left with holes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stemtrace.server.store import rollups_schema
from stemtrace.server.store.db import Dialect

# Workflows per DELETE statement: ~1-10 ms of SQLite per chunk, bound variables well
# under SQLite's oldest limit (999).
CHUNK = 250
# SQLite pages released per ``incremental_vacuum`` call (16 KiB pages: 64 MiB).
VACUUM_PAGES = 4096
# Free pages worth a vacuum: below this the file keeps them for the next inserts.
VACUUM_MIN_FREE = 256
# PostgreSQL: dead rows that make a table worth a VACUUM here (autovacuum's own default
# threshold is 50 + 20% of the table; a table it keeps clean never reaches this one).
PG_DEAD_MIN = 1000
PG_DEAD_FRACTION = 0.25


def _q(conn: Any, dialect: Dialect, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cur = conn.execute(dialect.sql(text), tuple(params))
    return list(cur.fetchall()) if cur.description else []


def _changed(conn: Any, dialect: Dialect, text: str, params: Sequence[Any] = ()) -> int:
    cur = conn.execute(dialect.sql(text), tuple(params))
    return max(int(cur.rowcount), 0)


def delete_workflows(conn: Any, dialect: Dialect, ids: Sequence[str]) -> int:
    """Delete the workflows and everything in them; returns the tasks deleted."""
    tasks = 0
    for start in range(0, len(ids), CHUNK):
        part = list(ids[start : start + CHUNK])
        m = ",".join("?" * len(part))
        tasks += _changed(conn, dialect, f"DELETE FROM tasks WHERE workflow_id IN ({m})", part)
        _changed(conn, dialect, f"DELETE FROM aliases WHERE workflow_id IN ({m})", part)
        _changed(conn, dialect, f"DELETE FROM workflows WHERE id IN ({m})", part)
    rollups_schema.forget_tasks(conn, dialect, tasks)
    return tasks


def expired_workflows(
    conn: Any, dialect: Dialect, now: float, *, retention: float, failure_retention: float, batch: int
) -> list[str]:
    """Up to ``batch`` workflows past their retention, oldest first (successes, then failures).

    A success goes at the shorter of the two windows (``failure_retention`` only ever
    keeps failures longer).
    """
    ok_cut = max(now - retention, now - failure_retention)
    fail_cut = now - failure_retention
    select = "SELECT id FROM workflows WHERE has_failure = ? AND ingested_at < ? ORDER BY ingested_at LIMIT ?"
    ids = [wid for (wid,) in _q(conn, dialect, select, [False, ok_cut, batch])]
    if len(ids) < batch:
        ids += [wid for (wid,) in _q(conn, dialect, select, [True, fail_cut, batch - len(ids)])]
    return ids


def expire_side_tables(conn: Any, dialect: Dialect, now: float, retention: float) -> int:
    """Workers not seen for ``retention`` and library health rows older than it."""
    cut = now - retention
    gone = _changed(conn, dialect, "DELETE FROM workers WHERE last_seen < ?", [cut])
    gone += _changed(conn, dialect, "DELETE FROM library_health WHERE ts < ?", [cut])
    return gone


def eviction_candidates(conn: Any, dialect: Dialect, max_tasks: int, batch: int) -> list[str]:
    """The oldest workflows whose removal brings the store to ``max_tasks`` tasks or below:
    successes first, failures only when successes do not suffice."""
    total = rollups_schema.stored_count(conn, dialect, "tasks")
    excess = total - max_tasks
    if excess <= 0:
        return []
    ids: list[str] = []
    select = "SELECT id, task_count FROM workflows WHERE has_failure = ? ORDER BY ingested_at LIMIT ?"
    for failure in (False, True):
        for wid, count in _q(conn, dialect, select, [failure, batch - len(ids)]):
            ids.append(wid)
            excess -= max(int(count or 0), 1)
            if excess <= 0 or len(ids) >= batch:
                return ids
    return ids


def sqlite_reclaim(conn: Any) -> int:
    """Give free pages back to the file system; returns the pages released.

    Needs ``auto_vacuum=INCREMENTAL``, which a new store gets (``SqliteDialect.connect``);
    an older file keeps its free pages for reuse and never grows past its peak. The WAL
    is then truncated, or it stays at its high-water mark (~145 MB at full ingest speed).
    """
    mode = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    released = 0
    if mode == 2:  # incremental
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free >= VACUUM_MIN_FREE:
            # ``execute`` steps a statement once, and each step of this one frees one page;
            # ``executescript`` steps it to the end.
            conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
            released = free - int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    # TRUNCATE waits for readers to leave the WAL; on the writer's connection that wait would
    # hold up ingest, so it gets one second (a busy reader just means: truncate next time).
    timeout = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute("PRAGMA busy_timeout=1000")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute(f"PRAGMA busy_timeout={timeout}")
    return released


def postgres_reclaim(conn: Any, dialect: Dialect) -> int:
    """``VACUUM (ANALYZE)`` each of the store's tables holding many dead rows; returns the
    tables vacuumed.

    Deleted rows' space is reused only once a vacuum has passed. Autovacuum does that where it
    runs, and then no table reaches the threshold here; where it is off (``autovacuum = off``,
    as on some test and managed instances) the store grew by ~3.4 MB/s at 1,000 tasks/s with a
    60 s retention and no bound. A plain VACUUM takes no lock that ingest or the API waits for.
    """
    tables = _q(
        conn,
        dialect,
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND n_dead_tup > ? + ? * n_live_tup",
        [PG_DEAD_MIN, PG_DEAD_FRACTION],
    )
    for (name,) in tables:
        conn.execute(f'VACUUM (ANALYZE) "{name}"')
    return len(tables)
