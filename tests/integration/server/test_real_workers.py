"""Real Celery workers instrumented by ``stemtrace.init``, events through a real broker
into a real server, checked only through the HTTP API.

The worker is a ``celery worker`` subprocess (``tests.support``); the server is the
app with its ingest thread (in-process, or ``stemtrace server`` as a subprocess for
the outage test). Nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord
from server_events import TestClient
from server_harness import ServerProcess, cleanup_source, wait_for
from tests.support import AppSettings, TaskKit, WorkerProcess, make_app
from tests.support.results import wait as wait_result

from stemtrace.server import create_app
from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration


class Running:
    """An instrumented app in this process plus a worker subprocess for it."""

    def __init__(self, settings: AppSettings, pool: str = "prefork") -> None:
        self.settings = settings
        self.worker = WorkerProcess(settings, pool, concurrency=2)
        self.tasks: TaskKit | None = None

    def __enter__(self) -> Running:
        import stemtrace.capture.install as capture

        capture.uninstall()
        self.tasks = make_app(self.settings)
        self.worker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import stemtrace.capture.install as capture

        self.worker.stop()
        capture.flush(5.0)
        capture.uninstall()

    def flush(self) -> None:
        import stemtrace.capture.install as capture

        capture.flush(5.0)


def events_source(settings: AppSettings) -> TransportConfig:
    """Where the library puts this app's events (its zero-config choice), for the server."""
    name = str(settings.options.get("name", "stemtrace.events"))
    if settings.broker_url.startswith("redis"):
        return TransportConfig(url=settings.broker_url, name=settings.prefix + name)
    return TransportConfig(url=settings.broker_url, name=name)


def run_canvases(t: TaskKit) -> dict[str, str]:
    """A chain, a chord, a failure and a retry; returns their ids once all finished."""
    ch = chain(t.add.s(1, 2), t.add.s(3)).apply_async()
    cd = chord([t.add.s(i, i) for i in range(3)], t.tsum.s()).apply_async()
    bad = t.fail.delay("boom")
    flaky = t.flaky.delay(1)
    assert wait_result(ch, 30) == 6
    assert wait_result(cd, 30) == 6
    assert wait_result(flaky, 30) == "ok"
    with pytest.raises(ValueError, match="boom"):
        wait_result(bad, 30)
    return {
        "chain_head": ch.parent.id,
        "chain_tail": ch.id,
        "chord_body": cd.id,
        "fail": bad.id,
        "flaky": flaky.id,
    }


def check_through_api(c: Any, ids: dict[str, str]) -> None:
    def state(tid: str) -> str | None:
        r = c.get(f"/api/tasks/{tid}")
        return r.json()["state"] if r.status_code == 200 else None

    wait_for(
        lambda: (
            [state(ids[k]) for k in ("chain_tail", "chord_body", "fail", "flaky")]
            == ["SUCCESS", "SUCCESS", "FAILURE", "SUCCESS"]
        ),
        timeout=60,
    )
    listed = {t["id"]: t for t in c.get("/api/tasks", params={"limit": 1000}).json()["items"]}
    assert {ids["chain_head"], ids["chain_tail"], ids["chord_body"], ids["fail"], ids["flaky"]} <= set(listed)
    assert listed[ids["fail"]]["exception_type"].endswith("ValueError")
    assert ids["fail"] in {t["id"] for t in c.get("/api/tasks", params={"state": "FAILURE"}).json()["items"]}

    flaky = c.get(f"/api/tasks/{ids['flaky']}").json()
    assert [a["state"] for a in flaky["attempts"]] == ["RETRY", "SUCCESS"]
    assert flaky["retries"] == 1
    assert flaky["attempts"][0]["exception_type"].endswith("Retry") or flaky["attempts"][0]["exception"], (
        flaky["attempts"][0]
    )

    graph = c.get(f"/api/workflows/{ids['chord_body']}").json()
    chords = [g for g in graph["groups"] if g["kind"] == "chord"]
    assert len(chords) == 1, graph["groups"]
    assert chords[0]["callback"] == ids["chord_body"]
    assert len(chords[0]["members"]) == 3
    assert graph["state"] == "SUCCESS"
    real = [n for n in graph["nodes"] if not n["plumbing"]]
    assert {n["name"] for n in real} == {"t.add", "t.tsum"}

    chain_graph = c.get(f"/api/workflows/{ids['chain_tail']}").json()
    assert {(e["source"], e["target"], e["kind"]) for e in chain_graph["edges"]} >= {
        (ids["chain_head"], ids["chain_tail"], "chain")
    }


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_canvases_on_redis_end_to_end(
    store_kind: str, tmp_path: Path, pg_dsn: str, unique_name: str, redis_url: str
) -> None:
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    store_url = (
        f"sqlite:///{tmp_path / 'e2e.db'}" if store_kind == "sqlite" else f"{pg_dsn}?schema={unique_name}"
    )
    source = events_source(settings)
    try:
        with Running(settings) as running:
            assert running.tasks is not None
            app = create_app(store_url=store_url, events=source)
            with TestClient(app) as c:
                ids = run_canvases(running.tasks)
                running.flush()
                check_through_api(c, ids)
                workers = c.get("/api/workers").json()["items"]
                assert running.worker.nodename in {w["hostname"] for w in workers}
                health = c.get("/api/health").json()
                assert health["status"] == "ok" and health["ingest"]["malformed"] == {}, health
    finally:
        cleanup_source(source)
        _drop_schema(store_kind, pg_dsn, unique_name)


def test_canvases_on_rabbitmq_end_to_end(
    tmp_path: Path, amqp_url: str, redis_url: str, unique_name: str
) -> None:
    """Celery on RabbitMQ: the library sends events to a RabbitMQ queue the server consumes."""
    settings = AppSettings(broker_url=amqp_url, backend_url=redis_url, options={"name": unique_name})
    source = events_source(settings)
    try:
        with Running(settings) as running:
            assert running.tasks is not None
            app = create_app(store_url=f"sqlite:///{tmp_path / 'amqp.db'}", events=source)
            with TestClient(app) as c:
                ids = run_canvases(running.tasks)
                running.flush()
                check_through_api(c, ids)
    finally:
        cleanup_source(source)


def test_server_down_while_1000_tasks_run(tmp_path: Path, redis_url: str) -> None:
    """Every task run while no server was up appears once it starts (events wait in the broker)."""
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    server = None
    try:
        with Running(settings) as running:
            assert running.tasks is not None
            results = [running.tasks.add.delay(i, i) for i in range(1000)]
            for r in results:
                wait_result(r, 60)
            running.flush()
        server = ServerProcess(
            "--broker",
            redis_url,
            "--events-name",
            source.name,
            "--store",
            f"sqlite:///{tmp_path / 'late.db'}",
        ).start()

        def counted() -> int:
            return len(server.get("/api/tasks", name="t.add", state="SUCCESS", limit=1000)["items"])

        wait_for(lambda: counted() == 1000, timeout=90)
        wanted = {r.id for r in results}
        got = {t["id"] for t in server.get("/api/tasks", name="t.add", limit=1000)["items"]}
        assert got == wanted
        assert server.get(f"/api/tasks/{results[500].id}")["attempts"][0]["state"] == "SUCCESS"
    finally:
        if server is not None:
            server.stop()
        cleanup_source(source)


def _drop_schema(kind: str, pg_dsn: str, schema: str) -> None:
    if kind != "postgresql":
        return
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def _one_app_per_process() -> Iterator[None]:
    yield
    import stemtrace.capture.install as capture

    capture.uninstall()
