"""The roll-up tables (``store/rollups.py``): their DDL, the backfill of a store that had tasks
before them, the maintained row counts, and their retention.

``store_counts`` holds the counts ``/api/health`` and ``/metrics`` used to get from
``COUNT(*)`` of big tables: ``tasks`` moves with every new task row (``rollups.apply``) and
every deleted one (``retention.delete_workflows``); ``workflows`` is kept by triggers on
the ``workflows`` table, as its rows are created and merged away in several places.
"""

from __future__ import annotations

from typing import Any

from stemtrace.server.store.db import Dialect
from stemtrace.server.store.rollups import (
    FLOAT_COLUMNS,
    HOUR,
    SNAPSHOT,
    VALUE_COLUMNS,
    Deltas,
    write,
)


def _values_ddl() -> str:
    return ",\n".join(
        f"    {c} {{float}} NOT NULL DEFAULT 0"
        if c in FLOAT_COLUMNS
        else f"    {c} {{bigint}} NOT NULL DEFAULT 0"
        for c in VALUE_COLUMNS
    )


DDL = f"""
CREATE TABLE IF NOT EXISTS rollup_hours (
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    hour {{bigint}} NOT NULL,
    source TEXT NOT NULL DEFAULT '',
{_values_ddl()},
    PRIMARY KEY (hour, name, queue, source)
);
CREATE INDEX IF NOT EXISTS rollup_hours_name ON rollup_hours (name, hour);
CREATE TABLE IF NOT EXISTS rollup_totals (
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    first_seen {{float}} NOT NULL,
{_values_ddl()},
    PRIMARY KEY (name, queue, source)
);
CREATE TABLE IF NOT EXISTS rollup_failed_totals (
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    exception_type TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    count {{bigint}} NOT NULL DEFAULT 0,
    PRIMARY KEY (name, queue, exception_type, source)
);
CREATE TABLE IF NOT EXISTS rollup_failures (
    name TEXT NOT NULL,
    exception_type TEXT NOT NULL,
    hour {{bigint}} NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    count {{bigint}} NOT NULL DEFAULT 0,
    first_seen {{float}},
    last_seen {{float}},
    sample_id {{text_c}},
    sample_ts {{float}},
    PRIMARY KEY (hour, name, exception_type, source)
);
CREATE INDEX IF NOT EXISTS rollup_failures_name ON rollup_failures (name, exception_type, hour);
CREATE TABLE IF NOT EXISTS rollup_names (
    name TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    count {{bigint}} NOT NULL DEFAULT 0,
    first_seen {{float}},
    last_seen {{float}},
    PRIMARY KEY (name, source)
);
CREATE TABLE IF NOT EXISTS store_counts (
    key TEXT PRIMARY KEY,
    count {{bigint}} NOT NULL DEFAULT 0
)
"""

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS workflows_counted_in AFTER INSERT ON workflows BEGIN "
    "UPDATE store_counts SET count = count + 1 WHERE key = 'workflows'; END",
    "CREATE TRIGGER IF NOT EXISTS workflows_counted_out AFTER DELETE ON workflows BEGIN "
    "UPDATE store_counts SET count = count - 1 WHERE key = 'workflows'; END",
)
# PostgreSQL: statement-level triggers over transition tables, one counter update per
# statement rather than per row (an upsert's INSERT table holds only the rows it inserted).
_PG_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION stemtrace_workflows_in() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE store_counts SET count = count + (SELECT count(*) FROM added) WHERE key = 'workflows'; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION stemtrace_workflows_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE store_counts SET count = count - (SELECT count(*) FROM removed) WHERE key = 'workflows'; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER workflows_counted_in AFTER INSERT ON workflows REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION stemtrace_workflows_in()",
    "CREATE TRIGGER workflows_counted_out AFTER DELETE ON workflows REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION stemtrace_workflows_out()",
)

BACKFILL_CHUNK = 20000


def migrate(conn: Any, dialect: Dialect) -> None:
    """Create the tables, count what is stored and roll up every stored task (once, at upgrade)."""
    for statement in DDL.split(";"):
        if statement.strip():
            conn.execute(dialect.sql(statement))
    for statement in _PG_TRIGGERS if dialect.name == "postgresql" else _SQLITE_TRIGGERS:
        conn.execute(statement)
    workflows = conn.execute("SELECT COUNT(*) FROM workflows").fetchone()[0]
    conn.execute(
        dialect.sql("INSERT INTO store_counts (key, count) VALUES ('workflows', ?), ('tasks', 0)"),
        (int(workflows),),
    )
    backfill(conn, dialect)


def backfill(conn: Any, dialect: Dialect) -> int:
    """Roll up the stored tasks through the same ``Deltas`` ingest uses; returns the tasks."""
    cols = ", ".join(SNAPSHOT)
    after = ""
    done = 0
    while True:
        rows = conn.execute(
            dialect.sql(f"SELECT id, {cols} FROM tasks WHERE id > ? ORDER BY id LIMIT {BACKFILL_CHUNK}"),
            (after,),
        ).fetchall()
        if not rows:
            return done
        d = Deltas()
        for row in rows:
            d.task(row[0], None, tuple(row[1:]))
        write(conn, dialect, d)
        done += len(rows)
        after = rows[-1][0]


def expire(conn: Any, dialect: Dialect, now: float, retention: float, failure_retention: float) -> int:
    """Drop hourly roll-ups older than the retention (failure groups: the failure retention);
    returns the rows deleted. Each name's count loses the tasks of its expired hours, and a
    name left with none is forgotten. The totals behind Prometheus counters never expire."""
    cut = int((now - retention) // HOUR)
    gone = conn.execute(
        dialect.sql("SELECT name, source, SUM(tasks) FROM rollup_hours WHERE hour < ? GROUP BY name, source"),
        (cut,),
    ).fetchall()
    deleted = 0
    if gone:
        cur = conn.cursor()
        cur.executemany(
            dialect.sql("UPDATE rollup_names SET count = count - ? WHERE name = ? AND source = ?"),
            [(int(n), name, source) for name, source, n in gone],
        )
        deleted += _changed(conn, dialect, "DELETE FROM rollup_hours WHERE hour < ?", cut)
        deleted += _changed(conn, dialect, "DELETE FROM rollup_names WHERE count <= 0", None)
    fail_cut = int((now - max(retention, failure_retention)) // HOUR)
    deleted += _changed(conn, dialect, "DELETE FROM rollup_failures WHERE hour < ?", fail_cut)
    return deleted


def forget_tasks(conn: Any, dialect: Dialect, count: int) -> None:
    """``count`` task rows were deleted (retention, eviction)."""
    if count:
        conn.execute(dialect.sql("UPDATE store_counts SET count = count - ? WHERE key = 'tasks'"), (count,))


def stored_count(conn: Any, dialect: Dialect, key: str) -> int:
    found = conn.execute(dialect.sql("SELECT count FROM store_counts WHERE key = ?"), (key,)).fetchall()
    return int(found[0][0]) if found else 0


def _changed(conn: Any, dialect: Dialect, text: str, param: Any) -> int:
    cur = conn.execute(dialect.sql(text), () if param is None else (param,))
    return max(int(cur.rowcount), 0)
