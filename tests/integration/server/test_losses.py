"""Losses are visible: a stream trimmed while the server is down shows in /api/health and /metrics.

The library is the real one (``stemtrace.init`` on a Celery app, sends through the real Redis);
the server runs in this process on a real store, with a short grace period so the test need
not wait five minutes for a gap to count as lost.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from server_events import TestClient
from server_harness import wait_for
from tests.support import AppSettings, make_app, read_stream

import stemtrace.capture.install as capture
from stemtrace.core.gaps import OVERFLOW, TRIMMED
from stemtrace.server import create_app
from stemtrace.server.store import open_store
from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def app_settings(redis_url: str) -> Any:
    capture.uninstall(0.5)
    value = AppSettings(broker_url=redis_url, backend_url=redis_url)
    yield value
    capture.uninstall(0.5)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _source(settings: AppSettings) -> TransportConfig:
    return TransportConfig(
        url=settings.broker_url,
        name="stemtrace.events",
        transport_options={"global_keyprefix": settings.prefix},
    )


def _serve(store_url: str, settings: AppSettings) -> Any:
    return TestClient(create_app(store_url=store_url, events=_source(settings)))


def _settle(client: Any) -> None:
    """Run loss detection now, with a grace period the test can wait out."""
    tracker = client.app.state.stemtrace.losses
    tracker.grace = 0.2
    wait_for(lambda: tracker.settle() > 0 or client.get("/api/health").json()["losses"]["total"] > 0)


def _stored(client: Any) -> int:
    return int(client.get("/api/health").json()["ingest"]["stored"])


def _tasks(client: Any) -> int:
    return len(client.get("/api/tasks", params={"limit": 1000}).json()["items"])


def test_a_stream_trimmed_while_the_server_is_down_shows_the_loss(
    app_settings: AppSettings, store_url: str
) -> None:
    tasks = make_app(app_settings)
    for i in range(100):
        tasks.add.delay(i, i)
    assert capture.flush(10.0)
    with _serve(store_url, app_settings) as c:  # the server sees the first 100
        wait_for(lambda: _tasks(c) == 100)
        assert c.get("/api/health").json()["losses"]["total"] == 0
        workflow = c.get("/api/tasks", params={"limit": 1}).json()["items"][0]["workflow_id"]
        assert c.get(f"/api/workflows/{workflow}").json()["events_may_be_missing"] is False
    # The server is down: 2,900 more tasks are sent, then the stream is trimmed to its newest
    # 3 entries (of 200 events each), as a MAXLEN or a retention would while nobody reads it.
    for i in range(2900):
        tasks.add.delay(i, i)
    assert capture.flush(10.0)
    client = redis.Redis.from_url(app_settings.broker_url)
    try:
        client.xtrim(app_settings.stream_key, maxlen=3, approximate=False)
    finally:
        client.close()
    capture.uninstall(5.0)  # the last event is the library's health report: nothing dropped
    kept = [e for e in read_stream(app_settings.broker_url, app_settings.stream_key)[0] if "task" in e]
    assert 0 < len(kept) < 2900
    with _serve(store_url, app_settings) as c:
        wait_for(lambda: _tasks(c) == 100 + len(kept))
        _settle(c)
        health = c.get("/api/health").json()
        losses = health["losses"]
        assert losses["total"] == 2900 - len(kept)
        assert losses["by_cause"] == {TRIMMED: losses["total"]}
        assert losses["recent"] == losses["total"]
        record = losses["latest"][0]
        assert record["first_seq"] == 101 and record["count"] == losses["total"]
        assert record["host"] and record["pid"] and record["start"] and record["end"]
        assert health["status"] == "degraded"
        assert any(r.startswith("losses:") for r in health["reasons"]), health["reasons"]
        metrics = c.get("/metrics").text
        assert f'stemtrace_events_lost_total{{cause="{TRIMMED}"}} {losses["total"]}' in metrics
        assert f'stemtrace_events_lost_total{{cause="{OVERFLOW}"}} 0' in metrics
        # Unfinished workflows (here every one: no worker ran them) are flagged when a loss came
        # after their first event: the event that would move them on may be the one lost. Those
        # that began after the window cannot have lost anything in it.
        items = c.get("/api/tasks", params={"limit": 1000}).json()["items"]
        assert c.get(f"/api/workflows/{items[-50]['workflow_id']}").json()["events_may_be_missing"] is True
        assert c.get(f"/api/workflows/{items[-102]['workflow_id']}").json()["events_may_be_missing"] is False
        # Idempotent: settling again (or another replica settling) records nothing more.
        assert c.app.state.stemtrace.losses.settle() == 0
    # And across a restart of the server on the same store.
    with _serve(store_url, app_settings) as c:
        c.app.state.stemtrace.losses.grace = 0.0
        assert c.app.state.stemtrace.losses.settle() == 0
        assert c.get("/api/health").json()["losses"]["total"] == losses["total"]


def test_overflow_reported_by_the_library_is_the_cause(app_settings: AppSettings, tmp_path: Path) -> None:
    """A process whose buffer overflowed says so in its health report: the gap is that cause."""
    settings = AppSettings(
        broker_url=app_settings.broker_url,
        backend_url=app_settings.backend_url,
        prefix=app_settings.prefix,
        queue=app_settings.queue,
        options={"buffer_size": 50, "flush_interval": 30},
    )
    tasks = make_app(settings)
    for i in range(500):  # the publisher waits 30 s between ticks: only the newest 50 are kept
        tasks.add.delay(i, i)
    capture.uninstall(5.0)
    store_url = f"sqlite:///{tmp_path / 'overflow.db'}"
    with _serve(store_url, settings) as c:
        wait_for(lambda: _tasks(c) == 50)
        _settle(c)
        losses = c.get("/api/health").json()["losses"]
        assert losses["by_cause"] == {OVERFLOW: 450}
        assert re.search(
            r'stemtrace_events_lost_total\{cause="buffer overflow"\} 450\b', c.get("/metrics").text
        )
    store = open_store(store_url)
    try:
        assert store.loss_report(0.0)["latest"][0]["first_seq"] == 1
    finally:
        store.close()


def _clocked(store: Any, grace: float) -> Any:
    from stemtrace.server.losses import LossTracker

    now = [1_790_000_000.0]
    tracker = LossTracker(store, grace=grace, clock=lambda: now[0])
    return tracker, now


def test_gaps_close_late_or_become_losses_once_on_the_store(store_url: str) -> None:
    """On both stores: a gap filled within the grace period is no loss; one left open is
    recorded once, by cause, however many replicas settle; the workflow flag follows the
    process that sent the workflow's events."""
    import sys
    from pathlib import Path as _Path

    sys.path.insert(0, str(_Path(__file__).parents[2] / "unit" / "server"))
    from server_events import EventFactory

    from stemtrace.core.events import decode_event
    from stemtrace.server.losses import workflow_flag

    store = open_store(store_url)
    try:
        tracker, now = _clocked(store, grace=60.0)
        worker = EventFactory()
        other = EventFactory(host="h2")
        a = worker.run("wf-a", "proj.a", at=0.0)  # published, received, started, succeeded
        b = worker.run("wf-b", "proj.b", at=10.0)
        c = worker.run("wf-c", "proj.c", at=20.0)
        o = other.run("wf-o", "proj.o", at=10.0)
        for batch in (a, c, o):  # b is late: another replica holds it
            store.apply(batch, {}, now[0])
            tracker.observe(batch)
        now[0] += 30.0
        assert tracker.settle() == 0  # within the grace period: no loss yet
        store.apply(b, {}, now[0])
        tracker.observe(b)  # the gap closes
        now[0] += 100.0
        assert tracker.settle() == 0
        assert store.loss_report(0.0)["total"] == 0

        d = worker.run("wf-d", "proj.d", at=30.0)
        x1 = [
            worker.event(t, "wf-x", "proj.x", at=35.0 + i / 10)
            for i, t in enumerate(("task.received", "task.started"))
        ]
        lost = worker.run("wf-e", "proj.e", at=40.0)  # never arrives
        x2 = [worker.event("task.succeeded", "wf-x", "proj.x", at=55.0, retries=0, runtime=20.0)]
        o2 = other.run("wf-o2", "proj.o", at=45.0)  # another process, inside the window
        health = decode_event(worker.raw("library.health", None, at=60.0, sent=30, dropped=3,
                                         drops={"buffer overflow": 3}))  # fmt: skip
        for batch in (d, x1, x2, o2, [health]):
            store.apply(batch, {}, now[0])
            tracker.observe(batch)
        now[0] += 61.0
        assert tracker.settle() == len(lost)
        assert tracker.settle() == 0  # idempotent: a second replica's pass finds nothing new
        report = store.loss_report(0.0)
        assert report["by_cause"] == {"buffer overflow": 3, "missing after broker trimming": len(lost) - 3}
        assert {(r["first_seq"], r["last_seq"]) for r in report["latest"]} == {
            (lost[0].src.seq, lost[-1].src.seq)
        }

        def flag(workflow: str) -> bool:
            row = store.get_workflow(store.resolve_workflow(workflow) or "")
            assert row is not None and row.finished_at is not None
            return workflow_flag(store, row)

        # Finished workflows: flagged when the window falls inside them and the loss is from a
        # process that sent some of their events.
        assert flag("wf-x") is True
        assert flag("wf-d") is False  # ended with the event before the gap
        assert flag("wf-o2") is False  # inside the window, but from another process
        assert flag("wf-o") is False
    finally:
        store.close()
