"""One behaviour, two engines: the Store contract on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.core.task import fold_task
from stemtrace.server.store import BadCursor, SqlStore, TaskQuery, WorkflowQuery

NOW = 1_790_100_000.0


def ids(page: object) -> list[str]:
    return [r.id for r in page.items]  # type: ignore[attr-defined]


def test_applies_a_task_life_and_reports_it(store: SqlStore) -> None:
    f = EventFactory()
    result = store.apply(f.run("t1", "proj.add", args=[1, 2], kwargs={"k": "v"}), {}, NOW)
    assert result.stored == 4
    assert result.changes.tasks == {"t1"}
    detail = store.get_task("t1")
    assert detail is not None
    assert detail.row.state == "SUCCESS"
    assert detail.row.workflow_id == "t1"
    assert detail.row.worker == "w1@h1"
    assert detail.record.args == [1, 2]
    assert [e["type"] for e in detail.events] == [
        "task.published",
        "task.received",
        "task.started",
        "task.succeeded",
    ]
    assert store.get_task("missing") is None


def test_redelivery_changes_nothing(store: SqlStore) -> None:
    f = EventFactory()
    events = f.run("t1", "proj.add") + f.run("t2", "proj.add", at=1, fail=True)
    store.apply(events, {}, NOW)
    before = [store.get_task(t).record.to_dict() for t in ("t1", "t2")]  # type: ignore[union-attr]
    again = store.apply(events[::-1], {}, NOW + 5)
    assert again.stored == 0
    assert [store.get_task(t).record.to_dict() for t in ("t1", "t2")] == before  # type: ignore[union-attr]
    assert len(store.get_task("t1").events) == 4  # type: ignore[union-attr]
    assert store.list_workflows(WorkflowQuery()).items[0].task_count == 1


def test_any_delivery_order_converges_to_the_in_order_fold(store: SqlStore) -> None:
    f = EventFactory()
    events = [
        f.event("task.published", "r", "proj.flaky", 0.0, root_id="r", queue="q1"),
        f.event("task.received", "r", "proj.flaky", 0.1, retries=0),
        f.event("task.started", "r", "proj.flaky", 0.2, retries=0),
        f.event("task.retried", "r", "proj.flaky", 0.3, retries=0, exception_type="IOError", exception="x"),
        f.event("task.published", "r", "proj.flaky", 0.35, root_id="r", retries=1, queue="q1"),
        f.event("task.received", "r", "proj.flaky", 0.4, retries=1),
        f.event("task.started", "r", "proj.flaky", 0.5, retries=1),
        f.event("task.succeeded", "r", "proj.flaky", 0.9, retries=1, runtime=0.4, result=1),
    ]
    expected = fold_task("r", events).to_dict()
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    for e in shuffled:  # one event per batch: the worst case for an incremental store
        store.apply([e], {}, NOW)
    got = store.get_task("r")
    assert got is not None
    assert got.record.to_dict() == expected
    assert got.row.state == TaskState.SUCCESS.value
    assert got.row.retries == expected["retries"]
    assert len(got.record.attempts) == 2


def test_keyset_pagination_is_stable_under_inserts(store: SqlStore) -> None:
    f = EventFactory()
    store.apply([f.event("task.published", f"a{i:02d}", "proj.t", float(i)) for i in range(25)], {}, NOW)
    seen: list[str] = []
    page = store.list_tasks(TaskQuery(limit=10))
    seen += ids(page)
    # Newer tasks arrive while the client pages: they must not shift what comes next.
    store.apply([f.event("task.published", f"b{i:02d}", "proj.t", 100.0 + i) for i in range(5)], {}, NOW)
    while page.next_cursor:
        page = store.list_tasks(TaskQuery(limit=10, cursor=page.next_cursor))
        seen += ids(page)
    assert seen == [f"a{i:02d}" for i in range(24, -1, -1)]
    with pytest.raises(BadCursor):
        store.list_tasks(TaskQuery(cursor="not-a-cursor"))


def test_filters(store: SqlStore) -> None:
    f = EventFactory()
    g = EventFactory(node="w2@h2")
    events = (
        f.run("aaa-1", "proj.add", 0, args=[1, 2], kwargs={"user": "alice"})
        + f.run("aab-2", "proj.mul", 10, fail=True, queue="math")
        + g.run("bbb-3", "proj.add", 20, args=["bob"])
        + [f.event("task.published", "ccc-4", "proj.add", 30, root_id="ccc-4", queue="celery")]
    )
    store.apply(events, {}, NOW)

    def q(**kw: object) -> list[str]:
        return ids(store.list_tasks(TaskQuery(**kw)))  # type: ignore[arg-type]

    assert q() == ["ccc-4", "bbb-3", "aab-2", "aaa-1"]
    assert q(name="proj.add") == ["ccc-4", "bbb-3", "aaa-1"]
    assert q(states=(TaskState.FAILURE,)) == ["aab-2"]
    assert q(states=(TaskState.FAILURE, TaskState.PENDING)) == ["ccc-4", "aab-2"]
    assert q(worker="w2@h2") == ["bbb-3"]
    assert q(queue="math") == ["aab-2"]
    assert q(q="aa") == ["aab-2", "aaa-1"]
    assert q(q="alice") == ["aaa-1"]
    assert q(q="bob") == ["bbb-3"]
    assert q(q="100%") == []
    assert q(since=f.t0 + 10, until=f.t0 + 25) == ["bbb-3", "aab-2"]
    assert q(workflow="bbb-3") == ["bbb-3"]
    assert q(name="proj.add", limit=2) == ["ccc-4", "bbb-3"]


def test_linked_workflows_merge_into_the_oldest(store: SqlStore) -> None:
    f = EventFactory()
    # Two tasks first seen apart (their publishes were lost), each its own workflow.
    store.apply([f.event("task.started", "parent", "proj.p", 0)], {}, NOW)
    store.apply([f.event("task.started", "child", "proj.c", 5)], {}, NOW)
    assert store.resolve_workflow("child") == "child"
    # The child's publish names its parent: one workflow, the older id survives.
    merged = store.apply(
        [f.event("task.published", "child", "proj.c", 4, parent_id="parent", root_id="parent")], {}, NOW
    )
    assert "child" in merged.changes.workflows
    assert store.resolve_workflow("child") == "parent"
    assert store.resolve_workflow("parent") == "parent"
    assert {r.id for r in store.workflow_records("parent")} == {"parent", "child"}
    wfs = store.list_workflows(WorkflowQuery()).items
    assert [(w.id, w.task_count) for w in wfs] == [("parent", 2)]
    assert store.get_task("child").row.workflow_id == "parent"  # type: ignore[union-attr]
    assert store.get_task("parent").children == ["child"]  # type: ignore[union-attr]


def test_workflow_rollup_and_listing(store: SqlStore) -> None:
    f = EventFactory()
    store.apply(f.run("w1", "proj.ok", 0) + f.run("w2", "proj.bad", 10, fail=True), {}, NOW)
    store.apply([f.event("task.published", "w3", "proj.slow", 20, root_id="w3")], {}, NOW)
    page = store.list_workflows(WorkflowQuery())
    assert [(w.id, w.state) for w in page.items] == [("w3", "RUNNING"), ("w2", "FAILURE"), ("w1", "SUCCESS")]
    failed = store.list_workflows(WorkflowQuery(states=(WorkflowState.FAILURE,)))
    assert ids(failed) == ["w2"]
    assert failed.items[0].has_failure
    assert ids(store.list_workflows(WorkflowQuery(name="proj.ok"))) == ["w1"]
    first = store.list_workflows(WorkflowQuery(limit=2))
    rest = store.list_workflows(WorkflowQuery(limit=2, cursor=first.next_cursor))
    assert ids(first) + ids(rest) == ["w3", "w2", "w1"]
    assert rest.next_cursor is None


def test_workers_fold_in_any_order(store: SqlStore) -> None:
    f = EventFactory(node="w9@h")
    online = f.event(
        "worker.online", None, None, 0, hostname="w9@h", pool="prefork", concurrency=4, queues=["celery"]
    )
    beat1 = f.event("worker.heartbeat", None, None, 10, hostname="w9@h", active=["t1"], processed=3)
    beat2 = f.event("worker.heartbeat", None, None, 20, hostname="w9@h", active=[], processed=5)
    store.apply([beat2], {}, NOW)
    store.apply([beat1, online], {}, NOW)
    [worker] = store.list_workers()
    assert worker["hostname"] == "w9@h"
    assert worker["processed"] == 5 and worker["active"] == []
    assert worker["concurrency"] == 4 and worker["queues"] == ["celery"]


def test_counters_and_library_health(store: SqlStore) -> None:
    f = EventFactory()
    store.apply([f.event("library.health", None, None, 0, sent=10, dropped=1)], {"invalid_json": 2}, NOW)
    store.apply(
        [f.event("library.health", None, None, 1, sent=20, dropped=3)],
        {"invalid_json": 1, "newer_schema": 1},
        NOW,
    )
    old = f.raw("library.health", None, None, 0, sent=1, dropped=0)
    old["src"]["seq"] = 1  # a redelivered older report must not win
    from stemtrace.core.events import decode_event

    store.apply([decode_event(old)], {}, NOW)
    c = store.counters()
    assert c["malformed"] == {"invalid_json": 3, "newer_schema": 1}
    [lib] = c["library"]
    assert (lib["sent"], lib["dropped"]) == (20, 3)


def test_retention_expires_whole_workflows_and_keeps_failures_longer(store: SqlStore) -> None:
    f = EventFactory()
    store.apply(
        [*f.run("ok", "proj.t", 0), f.event("task.published", "ok-child", "proj.t", 1, parent_id="ok")],
        {},
        NOW,
    )
    store.apply(f.run("bad", "proj.t", 2, fail=True), {}, NOW)
    store.apply(f.run("new", "proj.t", 3), {}, NOW + 86400 * 6)
    assert store.expire(NOW + 86400 * 8, 7 * 86400, 30 * 86400) == 1
    assert store.get_task("ok") is None and store.get_task("ok-child") is None
    assert store.resolve_workflow("ok-child") is None
    assert store.get_task("bad") is not None and store.get_task("new") is not None
    assert store.expire(NOW + 86400 * 31, 7 * 86400, 30 * 86400) == 2
    assert store.list_tasks(TaskQuery()).items == []


def test_tasks_of_an_offline_worker_become_lost(store: SqlStore) -> None:
    f = EventFactory(node="w1@h1")
    store.apply(
        [
            f.event("worker.online", None, None, 0, hostname="w1@h1"),
            f.event("task.published", "t", "proj.long", 1, root_id="t"),
            f.event("task.received", "t", "proj.long", 2),
            f.event("task.started", "t", "proj.long", 3),
            f.event("worker.offline", None, None, 4, hostname="w1@h1"),
        ],
        {},
        NOW,
    )
    assert store.mark_lost(f.t0 + 10, 90.0) == 1
    detail = store.get_task("t")
    assert detail is not None and detail.row.state == "LOST"
    assert detail.record.attempts[-1].lost_reason
    assert store.list_workflows(WorkflowQuery()).items[0].has_failure


def test_a_lost_task_keeps_its_search_text_and_argsrepr(store: SqlStore) -> None:
    f = EventFactory(node="w1@h1")
    store.apply(
        [
            f.event("worker.online", None, None, 0, hostname="w1@h1"),
            f.event("task.published", "t", "proj.long", 1, root_id="t", args_repr="('acct-1234',)"),
            f.event("task.started", "t", "proj.long", 2),
            f.event("worker.offline", None, None, 3, hostname="w1@h1"),
        ],
        {},
        NOW,
    )
    assert [t.id for t in store.list_tasks(TaskQuery(q="acct-1234")).items] == ["t"]
    assert store.mark_lost(f.t0 + 10, 90.0) == 1
    assert [t.id for t in store.list_tasks(TaskQuery(q="acct-1234")).items] == ["t"]
    detail = store.get_task("t")
    assert detail is not None and detail.row.state == "LOST"


def test_aggregates(store: SqlStore) -> None:
    f = EventFactory()
    events = []
    for i in range(6):
        events += f.run(f"s{i}", "proj.add", i)
    for i in range(2):
        events += f.run(f"f{i}", "proj.add", 10 + i, fail=True)
    store.apply(events, {}, NOW)
    assert store.task_names() == [("proj.add", 8)]
    [group] = store.failures(None, None, None, 10)
    assert (group["name"], group["exception_type"], group["count"], group["last_task_id"]) == (
        "proj.add",
        "ValueError",
        2,
        "f1",
    )
    [stats] = store.task_stats(f.t0 - 1, f.t0 + 100, None, 10)
    assert (stats["total"], stats["succeeded"], stats["failed"]) == (8, 6, 2)
    assert stats["failure_rate"] == pytest.approx(0.25)
    # From the roll-up's histogram: 300 ms falls in the (250 ms, 500 ms] bucket.
    assert 250.0 < stats["runtime_p50_ms"] <= 500.0
    assert sum(p["succeeded"] for p in stats["series"]) == 6


def test_changes_since(store: SqlStore) -> None:
    f = EventFactory()
    store.apply(f.run("x", "proj.t"), {}, NOW)
    store.apply(f.run("y", "proj.t", 1), {}, NOW + 1)
    changes, latest = store.changes_since(NOW + 0.5)
    assert changes.tasks == {"y"} and changes.workflows == {"y"}
    assert changes.task_workflows == {"y": "y"}
    assert latest == NOW + 1
    assert not store.changes_since(latest)[0]


def test_migrate_is_idempotent(store: SqlStore) -> None:
    assert store.migrate() == store.migrate()


def test_q_search_pages_through_id_prefix_and_argument_matches(store: SqlStore) -> None:
    """``q`` = id prefix OR argument words; paging finds each once (tests/contract/test_search.py: more)."""
    f = EventFactory()
    events = []
    for i in range(60):
        tid = f"ab{i:03d}" if i % 5 == 0 else f"zz{i:03d}"
        events += f.run(tid, "proj.t", i, args=["needle" if i % 7 == 0 else "hay", i])
    store.apply(events, {}, NOW)
    everything = store.list_tasks(TaskQuery(limit=1000)).items
    for q in ("ab", "needle", "zz00", "nothing-like-this"):
        expected = [
            t.id
            for t in everything
            if t.id.startswith(q) or (q in (store.get_task(t.id).row.args_preview or ""))  # type: ignore[union-attr]
        ]
        got: list[str] = []
        cursor = None
        for _ in range(100):
            page = store.list_tasks(TaskQuery(q=q, limit=4, cursor=cursor))
            assert len(page.items) <= 4
            got += ids(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == expected, q
    first = store.list_tasks(TaskQuery(q="needle", name="proj.t", limit=1000))
    assert ids(first)[:1] == ["zz056"]
    assert first.next_cursor is None


def _failed(
    f: EventFactory, task_id: str, name: str, at: float, exception_type: str, **publish: object
) -> list[Event]:
    pub = {"root_id": task_id, "queue": "celery", **publish}
    return [
        f.event("task.published", task_id, name, at, **pub),
        f.event("task.received", task_id, name, at + 0.1),
        f.event("task.started", task_id, name, at + 0.2),
        f.event(
            "task.failed", task_id, name, at + 0.5, exception_type=exception_type, exception="x", runtime=0.3
        ),
    ]


def test_exception_type_filter_is_exact_and_pages(store: SqlStore) -> None:
    f = EventFactory()
    events: list[Event] = []
    for i in range(7):
        events += _failed(f, f"k{i}", "proj.a" if i % 2 else "proj.b", i, "KeyError")
    events += _failed(f, "v1", "proj.a", 20, "ValueError")
    events += _failed(f, "m1", "proj.a", 21, "myapp.errors.KeyError")
    events += f.run("ok1", "proj.a", 22)
    store.apply(events, {}, NOW)

    def q(**kw: object) -> list[str]:
        return ids(store.list_tasks(TaskQuery(**kw)))  # type: ignore[arg-type]

    assert q(exception_types=("KeyError",)) == [f"k{i}" for i in range(6, -1, -1)]
    assert q(exception_types=("myapp.errors.KeyError",)) == ["m1"]
    assert q(exception_types=("keyerror",)) == []  # exact, case included
    assert q(exception_types=("Key",)) == []  # not a prefix match
    assert q(exception_types=("ValueError", "myapp.errors.KeyError")) == ["m1", "v1"]
    # The Failures page's drill-down: name + state + exception type together.
    assert q(name="proj.a", states=(TaskState.FAILURE,), exception_types=("KeyError",)) == ["k5", "k3", "k1"]
    assert q(exception_types=("KeyError",), q="k6") == ["k6"]
    assert q(exception_types=("KeyError",), since=f.t0 + 2, until=f.t0 + 4) == ["k3", "k2"]
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_tasks(TaskQuery(exception_types=("KeyError",), limit=3, cursor=cursor))
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"k{i}" for i in range(6, -1, -1)]


def test_exception_type_filter_has_an_index(store: SqlStore) -> None:
    with store.pool.connection() as conn:
        if store.dialect.name == "sqlite":
            found = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'tasks_exception'").fetchall()
            plan = conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE exception_type IN (?) "
                "ORDER BY sort_ts DESC, id DESC LIMIT 51",
                ("KeyError",),
            ).fetchall()
            assert "tasks_exception" in " ".join(str(r[-1]) for r in plan)
        else:
            found = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_exception' "
                "AND schemaname = current_schema()"
            ).fetchall()
    assert len(found) == 1
    assert "exception_type IS NOT NULL" in str(found[0][0]).replace("(", "").replace(")", "")


def test_task_detail_lists_children_with_name_and_state(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stemtrace.server.store import read

    monkeypatch.setattr(read, "CHILD_TASKS_MAX", 3)
    f = EventFactory()
    events = f.run("p", "proj.parent", 0)
    for i in range(5):
        if i == 1:
            events += _failed(f, "c1", "proj.bad", 2, "KeyError", parent_id="p", root_id="p")
        else:
            events += f.run(f"c{i}", "proj.kid", 1 + i, parent_id="p", root_id="p")
    store.apply(events, {}, NOW)
    detail = store.get_task("p")
    assert detail is not None
    assert detail.children == ["c0", "c1", "c2", "c3", "c4"]
    assert [(c.id, c.name, c.state) for c in detail.child_tasks] == [
        ("c0", "proj.kid", "SUCCESS"),
        ("c1", "proj.bad", "FAILURE"),
        ("c2", "proj.kid", "SUCCESS"),
    ]
    leaf = store.get_task("c0")
    assert leaf is not None and leaf.children == [] and leaf.child_tasks == []
