"""``source=`` on every list and aggregate the pages read, and the ``source`` label of the task
metrics, through the real HTTP API of a store fed by two event sources (``--source``)."""

from __future__ import annotations

import re

from server_events import EventFactory, TestClient

from stemtrace.server import create_app
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0


def _feed(store: SqlStore) -> EventFactory:
    orders, billing = EventFactory(node="o@h"), EventFactory(node="b@h")
    store.apply(
        orders.run("o1", "shop.order") + orders.run("o2", "shop.order", 1, fail=True)
        + [orders.event("worker.online", None, None, 0, hostname="o@h", queues=["celery"])],
        {}, NOW, "orders",
    )  # fmt: skip
    store.apply(
        [
            *billing.run("b1", "pay.charge", 3, fail=True),
            billing.event("worker.online", None, None, 0, hostname="b@h", queues=["celery"]),
        ],
        {}, NOW, "billing",
    )  # fmt: skip
    return orders


def test_lists_and_aggregates_take_source(store: SqlStore) -> None:
    f = _feed(store)
    window = {"since": f.t0 - 3600, "until": f.t0 + 3600}
    with TestClient(create_app(store=store, ingest=False)) as c:
        workflows = c.get("/api/workflows", params={"source": "orders"}).json()["items"]
        assert {w["id"]: w["source"] for w in workflows} == {"o1": "orders", "o2": "orders"}
        assert len(c.get("/api/workflows").json()["items"]) == 3
        assert c.get("/api/workflows/b1").json()["source"] == "billing"
        names = c.get("/api/task-names", params={"source": "billing"}).json()["items"]
        assert names == [{"name": "pay.charge", "count": 1}]
        failures = c.get("/api/failures", params={"source": "orders"}).json()["items"]
        assert [(g["name"], g["last_task_id"]) for g in failures] == [("shop.order", "o2")]
        stats = c.get("/api/stats/tasks", params={**window, "source": "billing"}).json()["items"]
        assert [(s["name"], s["total"], s["failed"]) for s in stats] == [("pay.charge", 1, 1)]
        assert c.get("/api/stats/tasks", params={**window, "source": "nowhere"}).json()["items"] == []
        workers = c.get("/api/workers", params={"source": "orders", "expired": True}).json()["items"]
        assert [w["hostname"] for w in workers] == ["o@h"]
        assert c.get("/api/stuck", params={"source": "billing"}).status_code == 200
        # An empty source= is no filter, as on /api/tasks.
        assert len(c.get("/api/task-names", params={"source": ""}).json()["items"]) == 2


def test_task_metrics_carry_the_source_label_when_it_has_a_name(store: SqlStore) -> None:
    _feed(store)
    single = EventFactory()
    store.apply(single.run("u1", "legacy.job", 5), {}, NOW)  # from an unlabelled source
    with TestClient(create_app(store=store, ingest=False)) as c:
        text = c.get("/metrics").text
    succeeded = {line for line in text.splitlines() if line.startswith("celery_task_succeeded_total{")}
    assert 'celery_task_succeeded_total{name="shop.order",queue_name="celery",source="orders"} 1' in succeeded
    assert (
        'celery_task_succeeded_total{name="pay.charge",queue_name="celery",source="billing"} 0' in succeeded
    )
    # The unlabelled source's series are what a single-source server always exported.
    assert 'celery_task_succeeded_total{name="legacy.job",queue_name="celery"} 1' in succeeded
    assert re.search(
        r'^celery_task_failed_total\{name="pay.charge",queue_name="celery",source="billing",'
        r'exception="ValueError"\} 1$',
        text,
        re.M,
    )
    assert re.search(
        r'^celery_task_runtime_bucket\{name="shop.order",queue_name="celery",source="orders",le="\+Inf"\} 2$',
        text,
        re.M,
    )


def test_worker_and_stuck_gauges_are_per_source_on_a_server_of_named_sources(store: SqlStore) -> None:
    _feed(store)
    sources = ("orders=redis://127.0.0.1:6379/15", "billing=redis://127.0.0.1:6379/15")
    with TestClient(create_app(store=store, ingest=False, sources=sources, worker_retention=1e9)) as c:
        text = c.get("/metrics").text
    up = {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("celery_worker_up{")}
    assert up == {
        'celery_worker_up{hostname="b@h",source="billing"}',
        'celery_worker_up{hostname="o@h",source="orders"}',
    }
    stuck = [line for line in text.splitlines() if line.startswith("stemtrace_tasks_stuck{")]
    assert 'stemtrace_tasks_stuck{reason="overdue",source="orders"} 0' in stuck
    assert 'stemtrace_tasks_stuck{reason="overdue",source="billing"} 0' in stuck
    assert all("source=" in line for line in stuck)


def test_a_server_of_one_unlabelled_source_exports_gauges_without_a_source_label(store: SqlStore) -> None:
    _feed(store)
    with TestClient(create_app(store=store, ingest=False, worker_retention=1e9)) as c:
        text = c.get("/metrics").text
    up = sorted(line for line in text.splitlines() if line.startswith("celery_worker_up{"))
    assert [line.split(" ")[0] for line in up] == [
        'celery_worker_up{hostname="b@h"}',
        'celery_worker_up{hostname="o@h"}',
    ]
    assert 'stemtrace_tasks_stuck{reason="overdue"} 0' in text.splitlines()


def test_beat_entries_are_per_source(store: SqlStore) -> None:
    """Each app's beat has its own ``celery.backend_cleanup``: /api/beat keeps them apart."""
    for source, every in (("orders", 60.0), ("billing", 300.0)):
        f = EventFactory(node=f"{source}@h")
        events = [
            e
            for i in range(4)
            for e in f.run(f"{source}{i}", "celery.backend_cleanup", every * i, beat="cleanup")
        ]
        store.apply(events, {}, NOW, source)
    with TestClient(create_app(store=store, ingest=False)) as c:
        since = {"since": "2000-01-01T00:00:00Z"}
        items = c.get("/api/beat", params=since).json()["items"]
        assert [(i["entry"], i["source"], i["interval_s"], i["runs"]) for i in items] == [
            ("cleanup", "billing", 300.0, 4),
            ("cleanup", "orders", 60.0, 4),
        ]
        only = c.get("/api/beat", params={**since, "source": "orders"}).json()["items"]
        assert [(i["entry"], i["source"]) for i in only] == [("cleanup", "orders")]
        page = c.get("/api/beat/cleanup", params={"source": "billing"}).json()
        assert page["source"] == "billing" and page["runs"][0]["task_id"] == "billing3"
        both = c.get("/api/beat/cleanup")
        assert both.status_code == 422 and "billing, orders" in str(both.json()["error"])
