"""Events through a real broker into a real store, read back through the API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from server_events import EventFactory, TestClient
from server_harness import ServerProcess, cleanup_source, publish, wait_for
from tests.support.stored_events import event_keys

from stemtrace.server import create_app
from stemtrace.server.ingest import Ingestor
from stemtrace.server.store import TaskQuery, open_store
from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration


def task_lives(n: int, prefix: str, f: EventFactory | None = None) -> list[dict[str, Any]]:
    f = f or EventFactory()
    out: list[dict[str, Any]] = []
    for i in range(n):
        tid = f"{prefix}-{i:05d}"
        out += [e.to_dict() for e in f.run(tid, "proj.work", i * 0.01, fail=i % 10 == 0)]
    return out


def test_end_to_end_with_poison(source: TransportConfig, store_url: str) -> None:
    good = task_lives(30, "ok")
    publish(source, good[:60])
    from stemtrace.transport import resolve

    pub = resolve(source).publisher()
    src = {"host": "h9", "pid": 9, "inst": "poison-process", "proc": "client", "node": None}
    newer = {"v": 99, "src": src, "events": []}  # a newer library's batch
    unknown = {"v": 1, "src": src, "events": [{"type": "nope", "ts": 1.0, "seq": 1, "data": {}}]}
    pub.send([json.dumps(newer).encode(), json.dumps(unknown).encode()])
    publish(source, good[60:])
    pub.send([b"\xff not json {"])
    pub.close()
    malformed = {"newer_schema": 1, "unknown_type": 1, "invalid_json": 1}
    app = create_app(store_url=store_url, events=source)
    with TestClient(app) as c:
        wait_for(lambda: len(c.get("/api/tasks", params={"limit": 1000}).json()["items"]) == 30)
        wait_for(lambda: c.get("/api/tasks/ok-00029").json()["state"] == "SUCCESS")
        tasks = c.get("/api/tasks", params={"limit": 1000, "state": "FAILURE"}).json()["items"]
        assert {t["id"] for t in tasks} == {f"ok-{i:05d}" for i in range(0, 30, 10)}
        # The counters follow a commit once the loop acknowledges its batch, after its next
        # poll (at most 50 ms later): the API can show the tasks a moment before.
        wait_for(lambda: c.get("/api/health").json()["ingest"]["stored"] >= len(good), timeout=5)
        health = c.get("/api/health").json()
        assert health["status"] == "ok", health
        assert health["ingest"]["malformed"] == malformed
        assert health["ingest"]["stored"] == len(good)
        assert 'stemtrace_malformed_events_total{kind="newer_schema"} 1' in c.get("/metrics").text


def test_two_replicas_store_every_event_once(redis_url: str, pg_dsn: str, unique_name: str) -> None:
    source = TransportConfig(url=redis_url, name=unique_name)
    store = open_store(f"{pg_dsn}?schema={unique_name}")
    events = task_lives(400, "rep")
    try:
        replicas = [Ingestor(store, source, consumer_name=f"r{i}", batch_size=200) for i in range(2)]
        for r in replicas:
            r.start()
        publish(source, events, per_message=20)
        wait_for(lambda: sum(r.stats.stored for r in replicas) >= len(events), timeout=90)
        time.sleep(0.5)
        for r in replicas:
            r.stop()
        assert sum(r.stats.stored for r in replicas) == len(events)
        assert all(r.stats.events > 0 for r in replicas), [r.stats.events for r in replicas]
        page = store.list_tasks(TaskQuery(limit=1000))
        assert len(page.items) == 400 and {t.state for t in page.items} == {"SUCCESS", "FAILURE"}
    finally:
        store.close()
        cleanup_source(source)
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)
def test_a_failed_commit_is_not_acknowledged_and_comes_back_at_once(
    source: TransportConfig, pg_dsn: str, unique_name: str
) -> None:
    """PostgreSQL refuses the first COMMIT (a deferred constraint trigger raises there, after
    every statement of the batch succeeded). Ingest commits in the background, so this is the
    path where the failure surfaces late: nothing may be acknowledged, the messages must come
    back without waiting for another replica to claim them, and each event lands once."""
    import psycopg

    store = open_store(f"{pg_dsn}?schema={unique_name}")
    store.migrate()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{unique_name}"')
        conn.execute("CREATE SEQUENCE checks")  # sequences survive the rollback they cause
        conn.execute(
            """CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('checks') = 1 THEN RAISE EXCEPTION 'commit refused by the test'; END IF;
                RETURN NULL;
            END $$"""
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON tasks "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_once()"
        )
    events = task_lives(300, "cf")
    ingestor = Ingestor(store, source, consumer_name="only", batch_size=400)
    try:
        ingestor.start()
        publish(source, events, per_message=50)
        wait_for(lambda: ingestor.stats.stored >= len(events), timeout=60)
        time.sleep(0.5)  # anything delivered twice would be counted by now
        ingestor.stop()
        assert ingestor.stats.stored == len(events)
        assert ingestor.stats.status == "ok"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{unique_name}"')
            checks = conn.execute("SELECT last_value FROM checks").fetchone()
            # Every task row is inserted once, those of the refused batch twice.
            assert checks is not None and checks[0] > 300
            assert len(event_keys(conn)) == len(events)
        page = store.list_tasks(TaskQuery(limit=1000))
        assert len(page.items) == 300 and {t.state for t in page.items} == {"SUCCESS", "FAILURE"}
    finally:
        ingestor.stop()
        store.close()
        cleanup_source(source)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


def test_kill_9_mid_batch_then_restart_loses_and_duplicates_nothing(
    redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    """The server was down while 5,000 tasks ran; killed -9 while catching up; restarted.

    The backlog (20,000 events in batches of 100) is large enough that the kill lands
    mid-catch-up even on a fast machine."""
    source = TransportConfig(url=redis_url, name=unique_name)
    db = tmp_path / "kill.db"
    events = task_lives(5000, "k")
    publish(source, events, per_message=10)  # the server is down: events wait in the stream
    args = (
        "--broker",
        redis_url,
        "--events-name",
        unique_name,
        "--store",
        f"sqlite:///{db}",
        "--batch-size",
        "100",
        "--consumer-name",
        "replica-a",
    )
    server = ServerProcess(*args).start()
    try:
        wait_for(lambda: server.get("/api/health")["ingest"]["events"] > 0, timeout=30, every=0.01)
        server.kill9()
        import sqlite3

        with sqlite3.connect(db) as conn:
            partial = len(event_keys(conn))
        assert 0 < partial < len(events)
        server = ServerProcess(*args).start()
        wait_for(lambda: server.get("/api/health")["store"]["ok"] and _count(db) == len(events), timeout=120)
        with sqlite3.connect(db) as conn:
            keys = event_keys(conn)
            assert (len(set(keys)), len(keys)) == (len(events), len(events))
            states = dict(conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall())
        assert states == {"SUCCESS": 4500, "FAILURE": 500}
        wait_for(lambda: server.get("/api/health")["ingest"]["lag"] == 0, timeout=30)
        assert json.dumps(server.get("/api/tasks/k-04999")["state"]) == '"SUCCESS"'
    finally:
        server.stop()
        cleanup_source(source)


def _count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return len(event_keys(conn))


def test_foreign_poison_messages_on_rabbitmq_do_not_stop_ingest(amqp_url: str, tmp_path: Path) -> None:
    """Bodies no stemtrace library wrote (invalid JSON declared as JSON, an unknown content
    type, a compressed body) sit in the RabbitMQ queue before good events: each is counted
    as malformed and acknowledged, and everything after it is ingested."""
    from kombu.connection import Connection
    from kombu.entity import Exchange
    from kombu.messaging import Producer

    from stemtrace.transport import resolve

    source = TransportConfig(url=amqp_url, name=f"st_poison_{tmp_path.name[-12:]}")
    resolve(source).publisher().close()  # declare the queue with the library's arguments
    try:
        with Connection(amqp_url) as conn:
            producer = Producer(conn.default_channel, exchange=Exchange(""), routing_key=source.name)
            producer.publish(b"{not json", content_type="application/json", content_encoding="utf-8")
            producer.publish(
                b"\x80\x04K\x01.", content_type="application/x-python-serialize", content_encoding="binary"
            )
            producer.publish("plain text", content_type="text/plain", content_encoding="utf-8")
        good = task_lives(5, "after-poison")
        publish(source, good)
        app = create_app(store_url=f"sqlite:///{tmp_path / 'poison.db'}", events=source)
        with TestClient(app) as c:
            wait_for(lambda: len(c.get("/api/tasks", params={"limit": 100}).json()["items"]) == 5, timeout=30)
            # The counters follow the commit a moment after the API shows the tasks (see above).
            wait_for(lambda: c.get("/api/health").json()["ingest"]["stored"] >= len(good), timeout=5)
            health = c.get("/api/health").json()
            assert health["ingest"]["stored"] == len(good)
            assert sum(health["ingest"]["malformed"].values()) == 3, health["ingest"]
            wait_for(lambda: c.get("/api/health").json()["ingest"]["lag"] == 0, timeout=15)
    finally:
        cleanup_source(source)
