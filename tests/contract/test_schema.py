"""The schema on both engines: the ``tasks`` table is what ``task_row.TASK_TABLE`` declares, and a
store in a layout this server does not read is refused with a clear error, never misread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_events import EventFactory

from stemtrace.server.store import SqlStore, StoreError, TaskQuery, open_store
from stemtrace.server.store.db import dialect_for
from stemtrace.server.store.schema import LATEST, VERSION_TABLE
from stemtrace.server.store.task_row import TASK_COLUMN_NAMES, TASK_TABLE, tasks_ddl

NOW = 1_700_000_000.0


def _columns(store: SqlStore) -> list[str]:
    with store.pool.connection() as conn:
        if store.dialect.name == "sqlite":
            return [str(r[1]) for r in conn.execute("PRAGMA table_info(tasks)").fetchall()]
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks' "
                "AND table_schema = current_schema() ORDER BY ordinal_position"
            ).fetchall()
        ]


def _indexes(store: SqlStore) -> dict[str, str]:
    with store.pool.connection() as conn:
        if store.dialect.name == "sqlite":
            found = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' "
                "AND sql IS NOT NULL"
            ).fetchall()
        else:
            found = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks' "
                "AND schemaname = current_schema()"
            ).fetchall()
    return {str(name): str(sql) for name, sql in found}


def test_the_tasks_table_is_its_column_table(store: SqlStore) -> None:
    assert _columns(store) == list(TASK_COLUMN_NAMES)
    indexes = _indexes(store)
    for column in TASK_TABLE:
        if column.indexed is None:
            continue
        sql = indexes[column.indexed.name].replace('"', "")
        keys = sql[sql.index("(") + 1 : sql.index(")")].replace(" ", "").split(",")
        assert keys[0] == column.name
        listed = [*column.indexed.then, *["sort_ts"][keys[0] == "sort_ts" :]]
        assert keys[1:] == (listed if column.indexed.listed else [])
        assert ("WHERE" in sql) is bool(column.indexed.partial or column.indexed.where)


def test_a_task_row_reads_back_by_name(store: SqlStore) -> None:
    """The row ``task_row`` builds lands in the columns of the same names."""
    f = EventFactory()
    store.apply(f.run("t1", "proj.add", 1, args=[2, 3], queue="q1", routing_key="rk1"), {}, NOW)
    (row,) = store.list_tasks(TaskQuery(limit=5)).items
    assert (row.id, row.name, row.queue, row.routing_key) == ("t1", "proj.add", "q1", "rk1")
    assert row.state == "SUCCESS" and row.workflow_id == "t1" and row.retries == 0
    assert row.sent_at is not None and row.sort_ts == row.sent_at
    with store.pool.connection() as conn:
        ingested, graph = conn.execute(
            store.dialect.sql("SELECT ingested_at, graph FROM tasks WHERE id = ?"), ("t1",)
        ).fetchone()
    assert ingested == NOW and graph.startswith("[")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str, unique_name: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    import psycopg

    yield f"{pg_dsn}?schema={unique_name}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


def _execute(url: str, *statements: str) -> list[Any]:
    dialect = dialect_for(url)
    conn = dialect.connect()
    try:
        out = []
        for statement in statements:
            cur = conn.execute(statement)
            out = list(cur.fetchall()) if cur.description else []
        return out
    finally:
        conn.close()


def test_a_pre_release_store_is_refused_not_misread(url: str) -> None:
    _execute(
        url,
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (11)",
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, name TEXT, state TEXT NOT NULL)",
    )
    with pytest.raises(StoreError, match=r"development build .*\(schema version 11 "):
        open_store(url)
    # Nothing was added to it.
    assert _execute(url, "SELECT COUNT(*) FROM schema_version") == [(1,)]
    with pytest.raises(StoreError):
        open_store(url)


def test_a_newer_store_is_refused(url: str) -> None:
    open_store(url).close()
    _execute(url, f"UPDATE {VERSION_TABLE} SET version = {LATEST + 1}")
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1}, newer than this server's {LATEST}"):
        open_store(url)


def test_a_new_store_records_the_latest_version(url: str) -> None:
    store = open_store(url)
    store.close()
    assert _execute(url, f"SELECT version FROM {VERSION_TABLE}") == [(LATEST,)]


def test_stores_in_other_schemas_do_not_wait_for_each_other(pg_dsn: str, unique_name: str) -> None:
    """The writers' advisory lock is per store: a batch held open in one schema's store does not
    stop another schema's (advisory locks are database-wide; one key for all would)."""
    import psycopg

    first = open_store(f"{pg_dsn}?schema={unique_name}_a")
    second = open_store(f"{pg_dsn}?schema={unique_name}_b")
    try:
        with first.writers.connection() as conn:
            first.dialect.begin_write(conn)  # a batch of the first store, not yet committed
            try:
                with second.writers.connection() as other:
                    other.execute("SET lock_timeout = '5s'")  # the same key would raise after 5 s
                    second.dialect.begin_write(other)
                    other.execute("ROLLBACK")
                second.apply(EventFactory().run("t1", "proj.add"), {}, NOW)
            finally:
                conn.execute("ROLLBACK")
        assert [t.id for t in second.list_tasks(TaskQuery(limit=5)).items] == ["t1"]
    finally:
        first.close()
        second.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for schema in (f"{unique_name}_a", f"{unique_name}_b"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_column_added_later_ends_up_as_in_a_new_store(tmp_path: Path) -> None:
    """A column ``since`` version 2: migration 2 adds it, with its index, to a version-1 table."""
    import sqlite3

    from stemtrace.server.store.task_row import Column, Index

    sort_ts = next(c for c in TASK_TABLE if c.name == "sort_ts")
    table = (
        *TASK_TABLE[:3],
        sort_ts,
        Column("later", "text", indexed=Index("tasks_later", partial=True), since=2),
    )
    dialect = dialect_for(f"sqlite:///{tmp_path / 'x.db'}")

    def build(path: Path, versions: list[int]) -> tuple[list[str], list[str]]:
        conn = sqlite3.connect(path)
        for version in versions:
            for statement in tasks_ddl(version, table):
                conn.execute(dialect.sql(statement))
        columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks)")]
        indexes = sorted(
            r[0]
            for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
        return columns, indexes

    migrated = build(tmp_path / "old.db", [1, 2])
    assert migrated[0] == ["id", "name", "state", "sort_ts", "later"]
    assert migrated[1] == sorted(
        [
            *build(tmp_path / "v1.db", [1])[1],
            "CREATE INDEX tasks_later ON tasks (later, sort_ts) WHERE later IS NOT NULL",
        ]
    )
