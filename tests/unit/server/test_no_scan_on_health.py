"""``/api/health`` and ``/metrics`` never scan or count a big table: every statement they run on a
real SQLite store, planned by SQLite itself, reads ``tasks``, ``events`` and ``workflows`` only
through an index search, and ``tasks`` by state in the index's order (a load balancer and
Prometheus call them every few seconds, whatever the store's size)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from server_events import EventFactory, TestClient

from stemtrace.server import create_app
from stemtrace.server.store import SqlStore, open_store

BIG = ("tasks", "events", "workflows")
NOW = 1_790_100_000.0


def _traced(store: SqlStore, statements: list[str]) -> None:
    """Record every statement run on the store's connections opened from now on."""
    connect = store.dialect.connect

    def traced_connect(*, writer: bool = False) -> Any:
        conn = connect(writer=writer)
        conn.set_trace_callback(statements.append)
        return conn

    store.dialect.connect = traced_connect  # type: ignore[method-assign]


def _filled(path: Path) -> SqlStore:
    store = open_store(f"sqlite:///{path}")
    events = []
    for i in range(3):  # three library processes with tasks in every unfinished state, and finished ones
        f = EventFactory(t0=NOW - 3600, host=f"h{i}", node=f"w{i}@h{i}")
        events += f.run(f"done-{i}", "proj.step", 0)
        events += f.run(f"bad-{i}", "proj.step", 1, fail=True)
        events.append(f.event("task.published", f"pending-{i}", "proj.step", 2, queue="celery"))
        events.append(f.event("task.received", f"received-{i}", "proj.step", 3, eta=NOW - 7200))
        events.append(f.event("task.started", f"started-{i}", "proj.step", 4))
        events.append(f.event("library.health", None, None, 5, sent=10 + i, dropped=i, errors=0))
    store.apply(events, {}, NOW - 3000)
    return store


def _plan(db: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/api/health", "/metrics"])
def test_health_and_metrics_read_the_big_tables_only_through_an_index(tmp_path: Path, path: str) -> None:
    db = tmp_path / "s.db"
    store = _filled(db)
    statements: list[str] = []
    _traced(store, statements)
    app = create_app(store=store, ingest=False)
    with TestClient(app) as c:
        statements.clear()
        r = c.get(path)
        assert r.status_code == 200
    if path == "/metrics":  # the page really read what these statements are planned for
        assert 'stemtrace_library_sent_total{host="h2"' in r.text
        assert 'celery_task_succeeded_total{name="proj.step"' in r.text
        assert "stemtrace_tasks_stuck" in r.text
    else:
        assert r.json()["library"]["processes"] == 3
    reads = [s for s in statements if re.match(r"\s*(SELECT|WITH)\b", s, re.IGNORECASE)]
    assert reads, statements
    for sql in reads:
        assert not re.search(r"\bCOUNT\s*\(\s*\*\s*\)", sql, re.IGNORECASE) or not any(
            re.search(rf"\bFROM\s+{t}\b", sql) for t in BIG
        ), sql
        for line in _plan(db, sql):
            scanned = re.match(r"SCAN (?:TABLE )?(\w+)", line)
            assert scanned is None or scanned.group(1) not in BIG, (sql, line)
            # An index search then a sort of everything it found (every task in a state, for the
            # stuck gauges) reads as much as a scan when a queue backlogs.
            by_state = re.search(r"\bFROM\s+tasks\s+WHERE\s+state\b", sql)
            sorted_after = "TEMP B-TREE FOR ORDER BY" in line and by_state
            assert not sorted_after, (sql, line)
