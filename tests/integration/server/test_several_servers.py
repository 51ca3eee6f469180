"""Several stemtrace servers on one broker: each store sees every event, replicas share.

Three ``stemtrace server`` processes on one real broker: store A (a PostgreSQL schema)
served by two replicas, store B (a SQLite file) by one. A real Celery worker runs 1,000
tasks (chains, chords, groups, failures). Each store must hold every task in its final
state and every event exactly once; the two replicas of A must have split A's messages
between them (together they committed each event once), and each server's health must
name its own subscription and see the other store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord, group
from server_harness import ServerProcess, wait_for
from tests.support import AppSettings, TaskKit, WorkerProcess, make_app
from tests.support.results import wait as wait_result
from tests.support.stored_events import event_keys

from stemtrace.server.store import SqlStore, open_store

pytestmark = pytest.mark.integration


def run_1000_tasks(t: TaskKit) -> dict[str, str]:
    """1,000 tasks: 100 chains of 3, 50 chords of 4 + callback, 50 groups of 3, 250 single
    tasks, 50 failures. Returns every task id with the state Celery gave it."""
    chains = [chain(t.add.s(i, i), t.add.s(1), t.add.s(2)).apply_async() for i in range(100)]
    chords = [chord([t.add.s(i, j) for j in range(4)], t.tsum.s()).apply_async() for i in range(50)]
    groups = [group(t.add.s(i, j) for j in range(3)).apply_async() for i in range(50)]
    singles = [t.add.delay(i, 1) for i in range(250)]
    failures = [t.fail.delay(f"boom {i}") for i in range(50)]
    expected: dict[str, str] = {}
    for res in chains:
        wait_result(res, 120)
        node = res
        while node is not None:
            expected[node.id] = "SUCCESS"
            node = node.parent
    for res in chords:
        wait_result(res, 120)
        expected[res.id] = "SUCCESS"
        for member in res.parent.results:
            expected[member.id] = "SUCCESS"
    for g in groups:
        for member in g.results:
            wait_result(member, 120)
            expected[member.id] = "SUCCESS"
    for res in singles:
        wait_result(res, 120)
        expected[res.id] = "SUCCESS"
    for res in failures:
        wait_result(res, 120, propagate=False)
        expected[res.id] = "FAILURE"
    assert len(expected) == 1000
    return expected


def store_tasks(store: SqlStore) -> dict[str, str]:
    with store.pool.connection() as conn:
        return dict(conn.execute("SELECT id, state FROM tasks").fetchall())


def store_events(store: SqlStore) -> set[tuple[str, int]]:
    with store.pool.connection() as conn:
        rows = event_keys(conn)
    keys = set(rows)
    assert len(keys) == len(rows)  # (inst, seq) is the key: each event kept once
    return keys


def health(server: ServerProcess) -> dict[str, Any]:
    return server.get("/api/health")  # type: ignore[no-any-return]


def cleanup(broker_url: str, key: str, subscriptions: set[str]) -> None:
    if broker_url.startswith("redis"):
        import redis

        redis.Redis.from_url(broker_url).delete(key)
        return
    from kombu.connection import Connection

    with Connection(broker_url) as conn:
        channel = conn.default_channel
        for queue in {key, *subscriptions}:
            try:
                channel.queue_delete(queue)
            except Exception:
                channel = conn.channel()
        for exchange in (key, key + ".unrouted", key + ".subscriptions"):
            try:
                channel.exchange_delete(exchange)
            except Exception:
                channel = conn.channel()


@pytest.fixture(params=["redis", "amqp"])
def broker_settings(
    request: pytest.FixtureRequest, redis_url: str, amqp_url: str, unique_name: str
) -> AppSettings:
    if request.param == "redis":
        return AppSettings(broker_url=redis_url, backend_url=redis_url)
    return AppSettings(broker_url=amqp_url, backend_url=redis_url, options={"name": unique_name})


@pytest.fixture
def schema_url(pg_dsn: str, unique_name: str) -> Iterator[str]:
    yield f"{pg_dsn}?schema={unique_name}"
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.mark.timeout(600)
def test_two_stores_and_a_replica_on_one_broker_each_see_every_task_once(
    broker_settings: AppSettings, schema_url: str, tmp_path: Path
) -> None:
    settings = broker_settings
    redis_broker = settings.broker_url.startswith("redis")
    name = str(settings.options.get("name", "stemtrace.events"))
    key = settings.prefix + name if redis_broker else name
    a_url, b_url = schema_url, f"sqlite:///{tmp_path / 'b.db'}"
    source = ("--broker", settings.broker_url, "--events-name", key)
    servers = [
        ServerProcess(*source, "--store", a_url),
        ServerProcess(*source, "--store", a_url),  # a replica of store A
        ServerProcess(*source, "--store", b_url, "--retention", "3d", "--max-tasks", "1000000"),
    ]
    seen_subscriptions: set[str] = set()
    worker = WorkerProcess(settings, "prefork", concurrency=2)
    import stemtrace.capture.install as capture

    try:
        for server in servers:
            server.start()
        own = [health(s)["ingest"]["subscription"] for s in servers]
        seen_subscriptions.update(own)
        assert own[0] == own[1] != own[2], own  # replicas share a subscription; stores do not
        assert all(":" in o for o in own), own
        # The retention in force, for the UI: B's own flags, A's defaults.
        kept = [health(s)["retention"] for s in servers]
        assert (kept[2]["retention_s"], kept[2]["max_tasks"]) == (3 * 86400, 1_000_000), kept
        assert (kept[0]["retention_s"], kept[0]["failure_retention_s"], kept[0]["max_tasks"]) == (
            7 * 86400,
            30 * 86400,
            None,
        ), kept

        capture.uninstall()
        kit = make_app(settings)
        worker.start()
        expected = run_1000_tasks(kit)
        capture.flush(10.0)
        worker.stop()
        capture.flush(10.0)

        a, b = open_store(a_url), open_store(b_url)
        try:

            def finished(store: SqlStore) -> bool:
                got = store_tasks(store)
                return all(got.get(tid) == state for tid, state in expected.items())

            wait_for(lambda: finished(a) and finished(b), timeout=180, every=1.0)
            # Every event the library sent reaches both stores; nothing is left on the broker.
            wait_for(lambda: all(health(s)["ingest"]["lag"] in (0, None) for s in servers), timeout=60)
            events_a, events_b = store_events(a), store_events(b)
            assert events_a == events_b and len(events_a) >= 4 * len(expected)
            # The replicas of A split its messages: between them they received each event once
            # (as many as B's one server did, worker and health events included), and each
            # task event was new to the store exactly once.
            stats = [health(s)["ingest"] for s in servers]
            assert stats[0]["events"] > 0 and stats[1]["events"] > 0, stats
            assert stats[0]["events"] + stats[1]["events"] == stats[2]["events"], stats
            assert stats[0]["stored"] + stats[1]["stored"] == len(events_a), stats
            assert stats[2]["stored"] == len(events_b), stats
            assert a.store_id() != b.store_id()
        finally:
            a.close()
            b.close()

        # Each server sees both subscriptions on the broker (RabbitMQ: by announcements).
        def listed(server: ServerProcess) -> set[str]:
            return {sub["name"] for sub in health(server)["ingest"]["subscriptions"]}

        wait_for(lambda: all(listed(s) >= {own[0], own[2]} for s in servers), timeout=40, every=1.0)
        if redis_broker:
            import redis

            # Retention on the broker works with several groups: what both acknowledged is gone.
            client = redis.Redis.from_url(settings.broker_url)
            wait_for(lambda: client.xlen(key) == 0, timeout=30)
        else:
            subs = {sub["name"]: sub for sub in health(servers[0])["ingest"]["subscriptions"]}
            assert subs[own[0]]["consumers"] == 2 and subs[own[2]]["consumers"] == 1, subs
    finally:
        worker.stop()
        capture.uninstall()
        for server in servers:
            server.stop()
        cleanup(settings.broker_url, key, seen_subscriptions)
