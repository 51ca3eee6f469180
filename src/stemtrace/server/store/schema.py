"""The versioned schema. Migrations run at startup, in order, each in its own transaction.

Timestamps are epoch seconds (double precision). Every list the API pages through has an
index that ends in ``sort_ts`` (the tasks') or ``(sort_ts, id)`` so newest-first keyset
pagination is a range scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stemtrace.server.store import rollups_schema, search
from stemtrace.server.store.base import StoreError
from stemtrace.server.store.db import Dialect
from stemtrace.server.store.task_row import tasks_ddl

# Every table but ``tasks`` (whose DDL ``task_row.TASK_TABLE`` generates), as of the first
# release. ``{float}``-style slots are the dialect's types (``db.Dialect.types``).
_TABLES = """
CREATE TABLE IF NOT EXISTS aliases (
    id {text_c} PRIMARY KEY,
    workflow_id {text_c} NOT NULL
);
CREATE INDEX IF NOT EXISTS aliases_workflow ON aliases (workflow_id);
CREATE TABLE IF NOT EXISTS workflows (
    id {text_c} PRIMARY KEY,
    name TEXT,
    root_id {text_c},
    state TEXT NOT NULL,
    task_count INTEGER NOT NULL,
    counts TEXT NOT NULL,
    sort_ts {float} NOT NULL,
    started_at {float},
    finished_at {float},
    has_failure {bool} NOT NULL,
    updated_at {float},
    ingested_at {float} NOT NULL,
    version {bigint} NOT NULL DEFAULT 0,
    -- set while every unfinished task waits for its ETA (``core.rollup.scheduled_for``)
    scheduled_for {float},
    -- the workflow named by its shape, "chord: score_item x500 -> summarize" (``core.shape``)
    shape TEXT,
    -- when the server found it over with steps still planned: never sent (``store/never_sent.py``)
    settled_at {float},
    -- the event source its tasks came from (``--source NAME``), empty for the one unlabelled source
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS workflows_sort ON workflows (sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_state ON workflows (state, sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_name ON workflows (name, sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_ingested ON workflows (ingested_at);
CREATE INDEX IF NOT EXISTS workflows_expiry ON workflows (has_failure, ingested_at);
CREATE INDEX IF NOT EXISTS workflows_source ON workflows (source, sort_ts, id) WHERE source <> '';
CREATE TABLE IF NOT EXISTS workers (
    hostname TEXT PRIMARY KEY,
    last_seen {float} NOT NULL,
    offline {bool} NOT NULL,
    ingested_at {float} NOT NULL,
    detail TEXT NOT NULL,
    -- the event source its events came through (``--source NAME``), empty when unlabelled
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS workers_last_seen ON workers (last_seen);
CREATE TABLE IF NOT EXISTS malformed (
    kind TEXT PRIMARY KEY,
    count {bigint} NOT NULL
);
CREATE TABLE IF NOT EXISTS library_health (
    inst TEXT PRIMARY KEY,
    host TEXT,
    pid INTEGER,
    seq {bigint} NOT NULL,
    ts {float} NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS library_health_ts ON library_health (ts);
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,
    count {bigint} NOT NULL,
    first_seen {float} NOT NULL,
    last_seen {float} NOT NULL,
    detail TEXT NOT NULL,
    sample TEXT NOT NULL,
    PRIMARY KEY (reason, kind)
);
CREATE TABLE IF NOT EXISTS seq_ranges (
    inst {text_c} NOT NULL,
    lo {bigint} NOT NULL,
    hi {bigint} NOT NULL,
    lo_at {float} NOT NULL,
    hi_at {float} NOT NULL,
    lo_ts {float} NOT NULL,
    hi_ts {float} NOT NULL,
    host TEXT,
    pid {bigint},
    PRIMARY KEY (inst, lo)
);
CREATE INDEX IF NOT EXISTS seq_ranges_hi_at ON seq_ranges (hi_at);
CREATE TABLE IF NOT EXISTS losses (
    inst {text_c} NOT NULL,
    first_seq {bigint} NOT NULL,
    last_seq {bigint} NOT NULL,
    count {bigint} NOT NULL,
    cause TEXT NOT NULL,
    host TEXT,
    pid {bigint},
    start_ts {float},
    end_ts {float} NOT NULL,
    detected_at {float} NOT NULL,
    PRIMARY KEY (inst, first_seq, cause)
);
CREATE INDEX IF NOT EXISTS losses_detected ON losses (detected_at);
CREATE INDEX IF NOT EXISTS losses_window ON losses (end_ts);
CREATE TABLE IF NOT EXISTS alert_log (
    key {text_c} PRIMARY KEY,
    rule TEXT NOT NULL,
    sent_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_log_sent ON alert_log (sent_at)
"""


def _v1(conn: Any, dialect: Dialect) -> None:
    """The first release's schema: ``_TABLES``, the ``tasks`` table from its column table, the
    full-text index of each task's search document and the roll-ups (``rollups_schema``; both
    differ by engine)."""
    for statement in [*_TABLES.split(";"), *tasks_ddl()]:
        if statement.strip():
            conn.execute(dialect.sql(statement))
    search.migrate(conn, dialect)
    rollups_schema.migrate(conn, dialect)


Migration = str | Callable[[Any, Dialect], None]
# Append a migration at the end (a string of ``;``-separated statements, or a function for
# steps that differ by engine); never edit one that has been released. A new task column is a
# row of ``task_row.TASK_TABLE`` with ``since=N`` and, as migration N, ``";".join(tasks_ddl(N))``.
MIGRATIONS: tuple[Migration, ...] = (_v1,)
LATEST = len(MIGRATIONS)

# Where the version is kept. Development builds before the first release kept theirs in
# ``schema_version``, for layouts this server no longer reads (see ``migrate``).
VERSION_TABLE = "store_schema"
_PRE_RELEASE_TABLE = "schema_version"


def migrate(conn: Any, dialect: Dialect) -> int:
    """Bring the schema to :data:`LATEST`; safe when several replicas start at once.

    A store made by a development build before the first release (its version in
    ``schema_version``) is refused with a clear error rather than read in a layout it
    does not have.
    """
    if dialect.has_table(conn, _PRE_RELEASE_TABLE) and not dialect.has_table(conn, VERSION_TABLE):
        (version,) = conn.execute(f"SELECT max(version) FROM {_PRE_RELEASE_TABLE}").fetchone()
        raise StoreError(
            f"the store {dialect.describe()} was made by a development build of stemtrace before its "
            f"first release (schema version {version} in a layout this server does not read); move it "
            "aside and start a new store (SQLite: another file; PostgreSQL: another database or "
            "?schema=), or open it with the build that made it"
        )
    conn.execute(dialect.sql(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)"))
    dialect.begin_write(conn)
    try:
        found = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall()
        current = int(found[0][0]) if found else 0
        if current > LATEST:
            raise StoreError(
                f"the store has schema version {current}, newer than this server's {LATEST}; upgrade stemtrace"  # noqa: E501
            )
        for version in range(current + 1, LATEST + 1):
            step = MIGRATIONS[version - 1]
            if callable(step):
                step(conn, dialect)
                continue
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(dialect.sql(statement))
        if not found:
            conn.execute(dialect.sql(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)"), (LATEST,))
        elif current != LATEST:
            conn.execute(dialect.sql(f"UPDATE {VERSION_TABLE} SET version = ?"), (LATEST,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return LATEST
