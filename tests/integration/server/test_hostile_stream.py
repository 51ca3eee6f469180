"""Hostile stream messages on a real Redis stream, between healthy events, into SQLite and
PostgreSQL: ingest keeps running, every healthy event is stored, every hostile message is
quarantined, repaired or dropped-and-counted, and every GET endpoint answers without a 5xx
after each one."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
import redis
from hostile_messages import HOSTILE, as_batch
from server_events import EventFactory, TestClient
from server_harness import wait_for

from stemtrace.server import create_app
from stemtrace.transport import TransportConfig, resolve

pytestmark = pytest.mark.integration

LIST_ENDPOINTS = [
    "/api/tasks",
    "/api/tasks?state=FAILURE",
    "/api/tasks?q=hostile",
    "/api/workflows",
    "/api/health",
    "/api/quarantine",
    "/api/workers",
    "/api/task-names",
    "/api/failures",
    "/api/stats/tasks",
    "/api/stuck",
    "/metrics",
]


def healthy(tid: str) -> bytes:
    return as_batch(EventFactory().run(tid, "proj.healthy", 0.0, queue="celery"))


def accounted(health: dict[str, Any]) -> int:
    """Every trace a message can leave: task events stored, events repaired (worker and library
    events are stored as rows, not as events), malformed, quarantined."""
    ingest = health["ingest"]
    counts = (ingest["malformed"], ingest["quarantined"], ingest["repaired"])
    return int(ingest["stored"]) + sum(sum(c.values()) for c in counts)


def settled(source: TransportConfig, app: Any) -> bool:
    """Every message on the stream delivered to the server's group and acknowledged."""
    ingestor = app.state.stemtrace.ingestor
    client = redis.Redis.from_url(source.url)
    try:
        stream = client.xinfo_stream(source.name)
        groups = {g["name"].decode(): g for g in client.xinfo_groups(source.name)}
        group = groups.get(ingestor.group)
        return bool(
            group is not None
            and group["pending"] == 0
            and group["last-delivered-id"] == stream["last-generated-id"]
        )
    finally:
        client.close()


def every_get_answers(c: TestClient, seen: set[str]) -> None:
    for path in LIST_ENDPOINTS:
        r = c.get(path)
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
    items = c.get("/api/tasks", params={"limit": 1000}).json()["items"]
    new = [item for item in items if item["id"] not in seen]
    seen.update(item["id"] for item in new)
    for item in new[:20]:  # a case stores a few tasks (the oversized batch thousands: a sample)
        for path in (f"/api/tasks/{item['id']}", f"/api/workflows/{item['workflow_id'] or item['id']}"):
            r = c.get(path)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])


CHUNKS = 4  # the corpus in four runs, each well inside the per-test timeout


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_hostile_messages_never_stall_ingest_nor_break_an_endpoint(
    source: TransportConfig, store_url: str, chunk: int
) -> None:
    cases = HOSTILE[chunk::CHUNKS]
    app = create_app(store_url=store_url, events=source)
    pub = resolve(source).publisher()
    seen: set[str] = set()
    silent: list[str] = []
    try:
        with TestClient(app) as c:

            def stored(task_id: str) -> bool:
                status: int = c.get(f"/api/tasks/{task_id}").status_code
                return status == 200

            pub.send([healthy("warm-up")])
            wait_for(lambda: c.get("/api/tasks/warm-up").status_code == 200, timeout=60)
            wait_for(lambda: c.get("/api/health").json()["ingest"]["stored"] >= 4, timeout=30)
            for i, (label, make) in enumerate(cases):
                before = c.get("/api/health").json()
                pub.send([healthy(f"ok-{i}-a"), make(), healthy(f"ok-{i}-b")])
                try:
                    wait_for(partial(stored, f"ok-{i}-b"), timeout=30, every=0.05)
                    wait_for(partial(stored, f"ok-{i}-a"), timeout=5, every=0.05)
                    # The counters follow the commit once its batch is acknowledged: wait until
                    # the broker has every message of the case acknowledged.
                    wait_for(lambda: settled(source, app), timeout=10, every=0.05)
                except AssertionError:
                    raise AssertionError(
                        f"ingest stalled after {label!r}: {c.get('/api/health').json()}"
                    ) from None
                time.sleep(0.02)  # the counters are updated right after the acknowledgement
                after = c.get("/api/health").json()
                assert after["ingest"]["restarts"] == 0, (label, after)
                assert after["ingest"]["status"] == "ok", (label, after)
                if accounted(after) - accounted(before) <= 8:
                    silent.append(label)
                every_get_answers(c, seen)
            for i in range(len(cases)):
                for half in "ab":
                    task = c.get(f"/api/tasks/ok-{i}-{half}").json()
                    assert task["state"] == "SUCCESS" and task["queue"] == "celery", task
            health = c.get("/api/health").json()
            assert health["status"] == "degraded"
            assert any(r.startswith("quarantine:") for r in health["reasons"]), health["reasons"]
            quarantine = c.get("/api/quarantine").json()["items"]
            assert quarantine and all(len(q["sample"]) <= 2048 and q["count"] >= 1 for q in quarantine)
            metrics = c.get("/metrics").text
            for q in quarantine:
                assert f'stemtrace_events_quarantined_total{{reason="{q["reason"]}"}}' in metrics
            assert "stemtrace_ingest_lag_seconds" in metrics
    finally:
        pub.close()
    # Messages that hold no event at all leave no trace; every other one must.
    assert set(silent) <= {"batch with no events"}, silent


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_each_kind_of_unusable_message_is_quarantined_with_a_sample(
    source: TransportConfig, tmp_path: Any
) -> None:
    by_label = dict(HOSTILE)
    app = create_app(store_url=f"sqlite:///{tmp_path / 'q.db'}", events=source)
    pub = resolve(source).publisher()
    try:
        with TestClient(app) as c:
            pub.send(
                [
                    by_label[label]()
                    for label in ("task id of 1 MB", "seq is 2**63", "message nested 1,100 levels")
                ]
            )
            pub.send([healthy("after")])
            wait_for(lambda: c.get("/api/tasks/after").status_code == 200, timeout=30)
            wait_for(lambda: len(c.get("/api/quarantine").json()["items"]) == 3, timeout=5)
            rows = {(q["reason"], q["kind"]): q for q in c.get("/api/quarantine").json()["items"]}
            assert set(rows) == {
                ("bad_id", "task.published"),
                ("bad_seq", "task.published"),
                ("undecodable", "message"),
            }
            assert "1048576 characters" in rows["bad_id", "task.published"]["detail"]
            assert rows["undecodable", "message"]["sample"].startswith("[[[[")
            assert c.get("/api/health").json()["ingest"]["quarantined"] == {
                "bad_id": 1,
                "bad_seq": 1,
                "undecodable": 1,
            }
    finally:
        pub.close()
