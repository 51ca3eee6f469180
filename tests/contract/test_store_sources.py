"""Everything scoped by event source (``--source NAME``) in the store, on SQLite and PostgreSQL:
workflows carry their tasks' source and list by it, the roll-up reads (stats, failure groups,
task names, the metrics' totals), stale tasks and workers take ``source=``, and the unlabelled
source of a single-source server reads as it always did."""

from __future__ import annotations

from server_events import EventFactory

from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.server.store import SqlStore, WorkflowQuery

NOW = 1_790_100_000.0


def _two_apps(store: SqlStore) -> tuple[EventFactory, EventFactory]:
    orders, billing = EventFactory(node="o@h"), EventFactory(node="b@h")
    store.apply(
        orders.run("o1", "shop.order") + orders.run("o2", "shop.order", 1, fail=True)
        + [orders.event("task.published", "o3", "shop.ship", 2, root_id="o1", parent_id="o1")]
        + [orders.event("worker.online", None, None, 0, hostname="o@h", queues=["celery"])],
        {}, NOW, "orders",
    )  # fmt: skip
    store.apply(
        billing.run("b1", "pay.charge", 3, fail=True) + billing.run("b2", "shop.order", 4)
        + [billing.event("worker.online", None, None, 0, hostname="b@h", queues=["celery"])],
        {}, NOW, "billing",
    )  # fmt: skip
    return orders, billing


def test_workflows_carry_their_tasks_source_and_list_by_it(store: SqlStore) -> None:
    _two_apps(store)
    every = {w.id: w.source for w in store.list_workflows(WorkflowQuery()).items}
    assert every == {"o1": "orders", "o2": "orders", "b1": "billing", "b2": "billing"}
    assert {w.id for w in store.list_workflows(WorkflowQuery(source="orders")).items} == {"o1", "o2"}
    failed = store.list_workflows(WorkflowQuery(source="billing", states=(WorkflowState.FAILURE,)))
    assert [w.id for w in failed.items] == ["b1"]
    assert store.list_workflows(WorkflowQuery(source="nowhere")).items == []
    row = store.get_workflow("o1")
    assert row is not None and row.source == "orders" and row.task_count == 2


def test_aggregates_are_scoped_by_source_from_the_rollups(store: SqlStore) -> None:
    f, _ = _two_apps(store)
    assert store.task_names() == [("pay.charge", 1), ("shop.order", 3), ("shop.ship", 1)]
    assert store.task_names("orders") == [("shop.order", 2), ("shop.ship", 1)]
    assert store.task_names("billing") == [("pay.charge", 1), ("shop.order", 1)]
    assert {g["name"] for g in store.failures(None, None, None, 10)} == {"shop.order", "pay.charge"}
    [group] = store.failures(None, None, None, 10, source="billing")
    assert (group["name"], group["count"], group["last_task_id"]) == ("pay.charge", 1, "b1")
    # Within one hour the failure groups come from the tasks themselves: scoped there too.
    [edge] = store.failures(f.t0, f.t0 + 60, None, 10, source="orders")
    assert (edge["name"], edge["last_task_id"]) == ("shop.order", "o2")
    stats = {s["name"]: s for s in store.task_stats(f.t0 - 3600, f.t0 + 3600, None, 4, source="orders")}
    assert (stats["shop.order"]["total"], stats["shop.order"]["failed"]) == (2, 1)
    every = {s["name"]: s["total"] for s in store.task_stats(f.t0 - 3600, f.t0 + 3600, None, 4)}
    assert every["shop.order"] == 3
    totals = {(n, src): v["tasks"] for n, _q, _f, v, src in store.task_metrics(NOW).totals}
    assert totals == {
        ("shop.order", "orders"): 2,
        ("shop.ship", "orders"): 1,
        ("shop.order", "billing"): 1,
        ("pay.charge", "billing"): 1,
    }
    failed = {(n, src, e): c for n, _q, e, c, src in store.task_metrics(NOW).failed}
    assert failed == {("shop.order", "orders", "ValueError"): 1, ("pay.charge", "billing", "ValueError"): 1}


def test_stale_tasks_and_workers_are_scoped_by_source(store: SqlStore) -> None:
    _two_apps(store)
    pending = store.stale_tasks([TaskState.PENDING], NOW + 1, 10)
    assert [r.id for r in pending] == ["o3"]
    assert store.stale_tasks([TaskState.PENDING], NOW + 1, 10, "billing") == []
    assert [r.id for r in store.stale_tasks([TaskState.PENDING], NOW + 1, 10, "orders")] == ["o3"]
    assert [w["hostname"] for w in store.list_workers()] == ["b@h", "o@h"]
    assert [w["hostname"] for w in store.list_workers("orders")] == ["o@h"]


def test_a_single_unlabelled_source_reads_as_before(store: SqlStore) -> None:
    f = EventFactory()
    store.apply(f.run("t1", "proj.add") + f.run("t2", "proj.add", 1, fail=True), {}, NOW)
    assert [w.source for w in store.list_workflows(WorkflowQuery()).items] == ["", ""]
    assert store.task_names() == store.task_names("") == [("proj.add", 2)]
    assert store.failures(None, None, None, 10) == store.failures(None, None, None, 10, source="")
    # A task later seen through a named source moves there whole, roll-ups included; a batch
    # without a source never takes one away.
    store.apply(f.run("t1", "proj.add"), {}, NOW + 1, "orders")
    store.apply([f.event("task.succeeded", "t1", "proj.add", 0.6, runtime=0.3)], {}, NOW + 2)
    assert store.get_task("t1").row.source == "orders"  # type: ignore[union-attr]
    assert store.task_names("orders") == [("proj.add", 1)] and store.task_names("") == [("proj.add", 1)]
    assert store.get_workflow("t1").source == "orders"  # type: ignore[union-attr]


def test_stale_tasks_of_a_backlog_are_the_first_sent_and_bounded(store: SqlStore) -> None:
    """A queue backlog: 40 tasks waiting, the 30 oldest unchanged for long; one of the oldest was
    received since. The read returns the first ``limit`` stale ones in the order they were sent,
    per state, and never one that changed since ``older_than``."""
    f = EventFactory()
    store.apply([f.event("task.published", f"q{i:02d}", "shop.ship", float(i)) for i in range(40)], {}, NOW)
    store.apply([f.event("task.received", "q00", "shop.ship", 100.0)], {}, NOW + 1)
    older_than = f.t0 + 30
    pending = store.stale_tasks([TaskState.PENDING], older_than, 10)
    assert [r.id for r in pending] == [f"q{i:02d}" for i in range(1, 11)]
    assert [r.id for r in store.stale_tasks([TaskState.RECEIVED], older_than, 10)] == []
    both = store.stale_tasks([TaskState.PENDING, TaskState.RECEIVED], f.t0 + 101, 3)
    assert [(r.id, r.state) for r in both] == [
        ("q01", "PENDING"), ("q02", "PENDING"), ("q03", "PENDING"), ("q00", "RECEIVED"),
    ]  # fmt: skip
