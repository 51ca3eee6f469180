"""LOST detection (every maintenance round) finds STARTED tasks through the state index, not
through every task an offline worker ever ran: planned by SQLite itself on a real store."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from server_events import EventFactory

from stemtrace.server.store import open_store

NOW = 1_790_100_000.0


def test_offline_workers_tasks_are_found_by_state_not_by_worker(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}")
    f = EventFactory(node="w1@h1")
    events = [f.event("worker.online", None, None, 0, hostname="w1@h1")]
    for i in range(200):  # what the worker ran before: none of it can become LOST
        events += f.run(f"done-{i}", "proj.step", 1 + i / 1000, worker="w1@h1")
    events += [
        f.event("task.published", "t", "proj.long", 2, root_id="t"),
        f.event("task.received", "t", "proj.long", 3),
        f.event("task.started", "t", "proj.long", 4),
        f.event("worker.offline", None, None, 5, hostname="w1@h1"),
    ]
    store.apply(events, {}, NOW)
    statements: list[str] = []
    with store.writers.connection() as conn:
        conn.set_trace_callback(statements.append)
    try:
        assert store.mark_lost(f.t0 + 10, 90.0) == 1
    finally:
        with store.writers.connection() as conn:
            conn.set_trace_callback(None)
    detail = store.get_task("t")
    assert detail is not None and detail.row.state == "LOST"
    reads = [s for s in statements if re.match(r"\s*SELECT\b.*\bFROM tasks\b", s, re.IGNORECASE | re.DOTALL)]
    assert reads
    check = sqlite3.connect(db)
    for sql in reads:
        plan = " | ".join(str(row[-1]) for row in check.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "tasks_worker" not in plan and not re.search(r"SCAN (TABLE )?tasks\b", plan), (sql, plan)
    check.close()
    store.close()
