"""SQLite bulk inserts: multi-row ``VALUES`` statements split at the bound-variable limit.

``executemany`` would release the GIL once per row, and the commit thread would then
wait a switch interval per row to get it back; one statement per ``limit`` values
releases it once. The split must not change what is stored or the count returned.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stemtrace.server.store.sqlite import SqliteDialect, statement_sizes


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setlimit"), reason="Connection.setlimit is Python 3.11+")
@pytest.mark.parametrize("limit", [3, 7, 12, 13, 1000])
def test_rows_split_at_the_variable_limit_are_all_stored_once(tmp_path: Path, limit: int) -> None:
    dialect = SqliteDialect(f"sqlite:///{tmp_path / 'x.db'}")
    conn = dialect.connect()
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, x REAL, v INTEGER)")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    head, types = "INSERT INTO t (k, n, x, v)", ("text", "bigint", "float8")
    once = {"tail": "ON CONFLICT (k) DO NOTHING", "constants": ", 1"}
    rows = [(f"k{i}", i, i / 3) for i in range(50)]
    assert dialect.insert_rows(conn, head, types, rows, **once) == 50
    again = [*rows[10:20], ("new", -1, None)]
    assert dialect.insert_rows(conn, head, types, again, **once) == 1
    stored = conn.execute("SELECT k, n, x, v FROM t ORDER BY n").fetchall()
    assert stored == [("new", -1, None, 1), *((k, n, x, 1) for k, n, x in rows)]
    assert dialect.insert_rows(conn, head, types, []) == 0


@pytest.mark.parametrize("most", [1, 2, 3, 43, 1000, 1424, 10_922])
def test_statement_sizes_cover_every_row_with_few_distinct_statements(most: int) -> None:
    texts: set[int] = set()
    for count in [*range(300), 1234, 5000, 20_000]:
        sizes = statement_sizes(count, most)
        assert sum(sizes) == count
        assert all(size <= most and size & (size - 1) == 0 for size in sizes)  # powers of two
        assert len(sizes) <= count // max(sizes, default=1) + most.bit_length()
        texts.update(sizes)
    # The statement cache holds each table's inserts however the batches vary in size.
    assert len(texts) <= most.bit_length()


def test_writes_prepare_a_bounded_set_of_statements(tmp_path: Path) -> None:
    """Batches of many sizes leave a dozen prepared inserts, not one per size."""
    dialect = SqliteDialect(f"sqlite:///{tmp_path / 'x.db'}")
    conn = dialect.connect()
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER)")
    seen: set[str] = set()
    conn.set_trace_callback(lambda sql: seen.add(sql) if sql.startswith("INSERT") else None)
    start = 0
    for count in range(1, 400, 7):
        rows = [(start + i, i) for i in range(count)]
        assert dialect.insert_rows(conn, "INSERT INTO t (k, n)", ("bigint", "bigint"), rows) == count
        start += count
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (start,)
    shapes = {sql.count("),(") + 1 for sql in seen}
    assert len(shapes) <= 9, sorted(shapes)
