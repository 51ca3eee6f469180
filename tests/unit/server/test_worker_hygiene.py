"""An autoscaled fleet stays readable: offline workers expire after --worker-retention."""

from __future__ import annotations

import time
from pathlib import Path

from server_events import EventFactory, TestClient

from stemtrace.server import create_app
from stemtrace.server.settings import ServerSettings
from stemtrace.server.store import open_store


def test_workers_are_online_offline_or_expired_and_expired_ones_are_hidden(tmp_path: Path) -> None:
    now = time.time()
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    events = []
    for host, ago, offline in (("up@a", 5, False), ("gone@b", 3 * 3600, True), ("old@c", 3 * 86400, True)):
        f = EventFactory(t0=now - ago, node=host)
        events.append(f.event("worker.online", None, None, 0, hostname=host, pool="prefork", concurrency=2))
        events.append(f.event("worker.heartbeat", None, None, 1, hostname=host, active=["t-" + host]))
        if offline:
            events.append(f.event("worker.offline", None, None, 2, hostname=host))
    store.apply(events, {}, now)
    settings = ServerSettings.build(env={}, worker_retention="1d")
    app = create_app(settings, store=store, ingest=False)
    with TestClient(app) as client:
        shown = client.get("/api/workers").json()
        everything = client.get("/api/workers", params={"expired": "true"}).json()
    store.close()
    assert {w["hostname"]: w["status"] for w in shown["items"]} == {"up@a": "online", "gone@b": "offline"}
    assert shown["expired"] == 1
    assert {w["hostname"]: w["status"] for w in everything["items"]} == {
        "up@a": "online", "gone@b": "offline", "old@c": "expired",
    }  # fmt: skip
    assert everything["expired"] == 0
    gone = next(w for w in shown["items"] if w["hostname"] == "gone@b")
    assert gone["active_tasks"] == ["t-gone@b"]  # the tasks it had when it went away
