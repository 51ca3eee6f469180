"""The versioned schema. Migrations run at startup, in order, each in its own transaction.

Timestamps are epoch seconds (double precision). Every list the API pages through has an
index that ends in ``(sort_ts, id)`` so newest-first keyset pagination is a range scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stemtrace.server.store import beat, rollups_schema, search
from stemtrace.server.store.db import Dialect

_V1 = """
CREATE TABLE IF NOT EXISTS events (
    inst {text_c} NOT NULL,
    seq {bigint} NOT NULL,
    task_id {text_c},
    type TEXT NOT NULL,
    ts {float} NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (inst, seq)
);
CREATE INDEX IF NOT EXISTS events_task ON events (task_id);
CREATE TABLE IF NOT EXISTS tasks (
    id {text_c} PRIMARY KEY,
    name TEXT,
    state TEXT NOT NULL,
    workflow_id {text_c},
    parent_id {text_c},
    root_id {text_c},
    group_id {text_c},
    worker TEXT,
    queue TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    sort_ts {float} NOT NULL,
    sent_at {float},
    received_at {float},
    started_at {float},
    finished_at {float},
    runtime_ms {float},
    exception_type TEXT,
    args_text TEXT,
    args_preview TEXT,
    updated_at {float},
    ingested_at {float} NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_sort ON tasks (sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (queue, sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_workflow ON tasks (workflow_id, sort_ts, id);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id);
CREATE INDEX IF NOT EXISTS tasks_ingested ON tasks (ingested_at);
CREATE TABLE IF NOT EXISTS attempts (
    task_id {text_c} NOT NULL,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    started_at {float},
    finished_at {float},
    runtime_ms {float},
    exception_type TEXT,
    PRIMARY KEY (task_id, number)
);
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
    ingested_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS workflows_sort ON workflows (sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_state ON workflows (state, sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_name ON workflows (name, sort_ts, id);
CREATE INDEX IF NOT EXISTS workflows_ingested ON workflows (ingested_at);
CREATE TABLE IF NOT EXISTS workers (
    hostname TEXT PRIMARY KEY,
    last_seen {float} NOT NULL,
    offline {bool} NOT NULL,
    ingested_at {float} NOT NULL,
    detail TEXT NOT NULL
);
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
)
"""

# v2: the attempts table was never read (attempts live in the task's detail) and cost a
# delete and an insert per task on every batch; ``graph`` holds what the workflow graph
# needs beyond the columns, so a 10,000-task graph never decodes 10,000 full details;
# ``version`` changes whenever a workflow's tasks do, which keys the server's graph cache.
_V2 = """
DROP TABLE IF EXISTS attempts;
ALTER TABLE tasks ADD COLUMN graph TEXT;
ALTER TABLE workflows ADD COLUMN version {bigint} NOT NULL DEFAULT 0
"""

# v3: the task list filters on ``exception_type`` (the Failures page's drill-down). The index is
# partial: most tasks have no exception, so it stays small and writes of those tasks skip it.
_V3 = """
CREATE INDEX IF NOT EXISTS tasks_exception ON tasks (exception_type, sort_ts, id)
WHERE exception_type IS NOT NULL
"""

# v4: an event's body no longer repeats its columns (inst, seq, task_id, type, ts; see
# ``codec.event_body``), a third less to write and store. Older bodies are still read as they
# are, so nothing is rewritten; the version keeps an older server from misreading new ones.
# The one statement changes nothing.
_V4 = """
CREATE INDEX IF NOT EXISTS events_task ON events (task_id)
"""

# v5: ``store_meta`` holds the store's identity (``store_id``, made once, see
# ``SqlStore.store_id``): servers on one broker derive their subscription from it, so
# two stores never split each other's events and replicas of one store share theirs.
# ``workflows_expiry`` lets retention find expired successes without walking past the
# failures kept longer (and lets ``--max-tasks`` evict successes first) as a range scan.
_V5 = """
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflows_expiry ON workflows (has_failure, ingested_at);
CREATE INDEX IF NOT EXISTS workers_last_seen ON workers (last_seen);
CREATE INDEX IF NOT EXISTS library_health_ts ON library_health (ts)
"""

# v6: events ingest set aside instead of stalling on them (``server/quarantine.py``): one row
# per reason and event type, so the table stays a few rows however much poison arrives.
_V6 = """
CREATE TABLE IF NOT EXISTS quarantine (
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,
    count {bigint} NOT NULL,
    first_seen {float} NOT NULL,
    last_seen {float} NOT NULL,
    detail TEXT NOT NULL,
    sample TEXT NOT NULL,
    PRIMARY KEY (reason, kind)
)
"""

# v7: sequence gaps become loss records (``server/losses.py``, ``core/gaps.py``). ``seq_ranges``
# holds the runs of seqs seen per library process (a row per run, merged back to about one per
# process); ``losses`` the gaps that stayed open past the grace period, by cause.
_V7 = """
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
CREATE INDEX IF NOT EXISTS losses_window ON losses (end_ts)
"""

# v8: the routing key a task was sent with, a column of its own beside the queue it was routed to
# (``queue`` held the routing key before); filtered on like the queue.
_V8 = """
ALTER TABLE tasks ADD COLUMN routing_key TEXT;
CREATE INDEX IF NOT EXISTS tasks_routing_key ON tasks (routing_key, sort_ts, id)
"""

# v9: alerts sent, one row per incident key and throttle window (``store/alert_log.py``): the
# replica whose insert wins sends the message, so several replicas never send one alert twice.
_V9 = """
CREATE TABLE IF NOT EXISTS alert_log (
    key {text_c} PRIMARY KEY,
    rule TEXT NOT NULL,
    sent_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_log_sent ON alert_log (sent_at)
"""

# v10: the full-text index of each task's search document (``store/search.py``; args_text now
# holds that document). Its statements differ by engine, so the step is a function.
_V10 = search.migrate

# v11: the task list filters on a group's members (``group``), so a collapsed fan-out's "N failed"
# opens exactly its members at any size; partial, as most tasks are in no group.
_V11 = """
CREATE INDEX IF NOT EXISTS tasks_group ON tasks (group_id, sort_ts, id) WHERE group_id IS NOT NULL
"""

# v12: the celery beat schedule entry that sent a task (``store/beat.py``): the Beat page groups by
# it and the task list filters on it. Partial, as most tasks are not beat's: the index holds the
# beat runs alone, and serves the entry list (a skip scan), an entry's runs and the filter.
_V12 = beat.MIGRATION

# v13: scheduled work shown as such. ``tasks.eta`` is when an ETA/countdown task is due (epoch
# seconds, from the message's ``eta``); ``workflows.scheduled_for`` is set while every unfinished
# task of the workflow waits for its ETA (``core.rollup.scheduled_for``); ``workflows.shape`` names
# the workflow by its shape ("chord: score_item x500 → summarize", ``core.shape``). Rows written
# before hold NULL until their workflow is rolled up again.
_V13 = """
ALTER TABLE tasks ADD COLUMN eta {float};
ALTER TABLE workflows ADD COLUMN scheduled_for {float};
ALTER TABLE workflows ADD COLUMN shape TEXT
"""

# v14: roll-ups maintained at ingest (``store/rollups.py``): per task name, queue and hour
# counts and histograms, failure groups, the task names, and the stored row counts; an
# existing store's tasks are rolled up once here.
_V14 = rollups_schema.migrate

# v15: when the server found a workflow over with steps still planned (``store/never_sent.py``):
# those steps were never sent, and its page and list row say so until anything new arrives.
_V15 = """
ALTER TABLE workflows ADD COLUMN settled_at {float}
"""

# v16: the label of the event source a task came from (``--source NAME=…``; empty for the
# one unlabelled source), filtered on with ``source=``; partial, as a single-source server
# labels nothing and so writes nothing more.
_V16 = """
ALTER TABLE tasks ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS tasks_source ON tasks (source, sort_ts, id) WHERE source <> ''
"""

Migration = str | Callable[[Any, Dialect], None]
MIGRATIONS: tuple[Migration, ...] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
    _V14,
    _V15,
    _V16,
)
LATEST = len(MIGRATIONS)


def migrate(conn: Any, dialect: Dialect) -> int:
    """Bring the schema to :data:`LATEST`; safe when several replicas start at once."""
    conn.execute(dialect.sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    dialect.begin_write(conn)
    try:
        found = conn.execute("SELECT version FROM schema_version").fetchall()
        current = int(found[0][0]) if found else 0
        if current > LATEST:
            raise RuntimeError(
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
            conn.execute(dialect.sql("INSERT INTO schema_version (version) VALUES (?)"), (LATEST,))
        elif current != LATEST:
            conn.execute(dialect.sql("UPDATE schema_version SET version = ?"), (LATEST,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return LATEST
