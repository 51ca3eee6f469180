"""Ingest under faults, on a real Redis stream: a crashed loop is restarted, a batch the store
refuses is split, and a SQLite store removed, replaced or full pauses ingest loudly without
acknowledging anything, then resumes by itself where it can."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from hostile_messages import as_batch
from server_events import EventFactory, TestClient
from server_harness import wait_for

from stemtrace.core.events import Event
from stemtrace.server import create_app
from stemtrace.server.context import ServerContext
from stemtrace.server.ingest import Ingestor
from stemtrace.server.ingest_process import IngestProcess
from stemtrace.server.store import StoreError, open_store
from stemtrace.transport import TransportConfig, resolve

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["redis"], indirect=True)]


def lives(n: int, prefix: str) -> list[Event]:
    f = EventFactory()
    return [e for i in range(n) for e in f.run(f"{prefix}-{i:04d}", "proj.work", i * 0.01)]


def publish(source: TransportConfig, events: list[Event], per_message: int = 100) -> None:
    pub = resolve(source).publisher()
    try:
        pub.send([as_batch(events[i : i + per_message]) for i in range(0, len(events), per_message)])
    finally:
        pub.close()


def ctx_of(app: Any) -> ServerContext:
    ctx: ServerContext = app.state.stemtrace
    return ctx


def count(c: TestClient, prefix: str) -> int:
    items = c.get("/api/tasks", params={"limit": 1000, "q": prefix}).json()["items"]
    return sum(1 for t in items if t["id"].startswith(prefix))


def unacknowledged(source: TransportConfig, ingestor: Ingestor | IngestProcess) -> int:
    client = redis.Redis.from_url(source.url)
    try:
        return int(client.xpending(source.name, ingestor.group)["pending"])
    finally:
        client.close()


def test_a_crashed_ingest_loop_is_restarted_and_health_says_so(
    source: TransportConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Ingestor._decode
    crashes: list[int] = []

    def crash_once(self: Ingestor, deliveries: list[Any]) -> Any:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("a bug in the loop")
        return real(self, deliveries)

    monkeypatch.setattr(Ingestor, "_decode", crash_once)
    app = create_app(store_url=f"sqlite:///{tmp_path / 's.db'}", events=source)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.ingest"), TestClient(app) as c:
        publish(source, lives(20, "cr"))
        wait_for(lambda: c.get("/api/health").json()["ingest"]["restarts"] == 1, timeout=10, every=0.05)
        wait_for(lambda: count(c, "cr-") == 20, timeout=30)  # what the crash left unacknowledged came back
        health = c.get("/api/health").json()
        assert health["status"] == "degraded", health
        assert any("restarted after a crash" in r for r in health["reasons"]), health["reasons"]
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None and ingestor.alive
        assert "stemtrace_ingest_restarts_total 1" in c.get("/metrics").text
    assert any(r.levelno == logging.ERROR and "ingest crashed" in r.getMessage() for r in caplog.records)


def test_a_batch_the_store_refuses_is_split_and_the_rest_stored(
    source: TransportConfig, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With validation bypassed, an id the database cannot take reaches the store: the batch is
    split down to it, it is quarantined, and every other event is stored."""
    monkeypatch.setattr("stemtrace.server.ingest.check", lambda e, now: (e, ()))
    good = lives(30, "sp")
    bad = replace(good[50], task_id="bad-\udc80", src=replace(good[50].src, seq=10_000))
    app = create_app(store_url=store_url, events=source)
    with TestClient(app) as c:
        publish(source, [*good[:50], bad, *good[50:]], per_message=200)
        wait_for(lambda: count(c, "sp-") == 30, timeout=30)
        wait_for(lambda: c.get("/api/quarantine").json()["items"], timeout=5)
        (entry,) = c.get("/api/quarantine").json()["items"]
        assert (entry["reason"], entry["kind"], entry["count"]) == ("store_rejected", "task.started", 1)
        health = c.get("/api/health").json()
        assert health["ingest"]["status"] == "ok" and health["ingest"]["quarantined"] == {"store_rejected": 1}
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        wait_for(lambda: unacknowledged(source, ingestor) == 0, timeout=5)  # acknowledged right after


def test_the_sqlite_directory_moved_away_pauses_ingest_until_it_is_back_and_removed_stays_paused(
    source: TransportConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "data"
    home.mkdir()
    app = create_app(store_url=f"sqlite:///{home / 'stemtrace.db'}", events=source)
    with caplog.at_level(logging.ERROR, logger="stemtrace.server.ingest"), TestClient(app) as c:
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(10, "a"))
        wait_for(lambda: count(c, "a-") == 10)
        home.rename(tmp_path / "elsewhere")
        publish(source, lives(10, "b"))
        wait_for(lambda: c.get("/api/health").json()["status"] == "degraded", timeout=10)
        health = c.get("/api/health").json()
        assert any("is gone" in r for r in health["reasons"]), health["reasons"]
        assert health["store"]["ok"] is False
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        assert not home.exists()  # no new, empty database where the old one was
        (tmp_path / "elsewhere").rename(home)
        wait_for(lambda: count(c, "b-") == 10, timeout=30)  # resumed by itself, nothing lost
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=10)
        assert unacknowledged(source, ingestor) == 0
        committed = ingestor.stats.events
        shutil.rmtree(home)
        publish(source, lives(5, "c"))
        wait_for(lambda: c.get("/api/health").json()["status"] == "degraded", timeout=10)
        wait_for(lambda: unacknowledged(source, ingestor) > 0, timeout=10)
        assert not home.exists()
        assert ingestor.stats.events == committed  # c-* never went into a deleted file
    assert any(r.levelno == logging.ERROR and "is gone" in r.getMessage() for r in caplog.records)
    with pytest.raises(StoreError, match="does not exist"):  # a restart: no new, empty store either
        open_store(f"sqlite:///{home / 'stemtrace.db'}")
    assert not home.exists()


def test_a_replaced_sqlite_file_pauses_ingest(source: TransportConfig, tmp_path: Path) -> None:
    db = tmp_path / "stemtrace.db"
    app = create_app(store_url=f"sqlite:///{db}", events=source)
    with TestClient(app) as c:
        publish(source, lives(5, "a"))
        wait_for(lambda: count(c, "a-") == 5)
        shutil.copy(db, tmp_path / "copy.db")
        db.unlink()
        (tmp_path / "copy.db").rename(db)
        publish(source, lives(5, "b"))
        wait_for(lambda: c.get("/api/health").json()["status"] == "degraded", timeout=10)
        assert any("was replaced" in r for r in c.get("/api/health").json()["reasons"])


def test_a_full_disk_pauses_ingest_and_it_resumes_by_itself(source: TransportConfig, tmp_path: Path) -> None:
    """SQLite's ``max_page_count`` on the writer connection stands in for a full file system:
    the same SQLITE_FULL error a full disk gives."""
    app = create_app(store_url=f"sqlite:///{tmp_path / 's.db'}", events=source)
    with TestClient(app) as c:
        store = ctx_of(app).store
        ingestor = ctx_of(app).ingestor
        assert ingestor is not None
        publish(source, lives(10, "a"))
        wait_for(lambda: count(c, "a-") == 10)
        with store.writers.connection() as conn:  # type: ignore[attr-defined]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        publish(source, lives(500, "b"), per_message=500)
        wait_for(lambda: "unwritable" in " ".join(c.get("/api/health").json()["reasons"]), timeout=15)
        assert unacknowledged(source, ingestor) > 0
        with store.writers.connection() as conn:  # type: ignore[attr-defined]
            conn.execute("PRAGMA max_page_count = 1073741823")
        wait_for(lambda: count(c, "b-") == 500, timeout=60)
        wait_for(lambda: c.get("/api/health").json()["status"] == "ok", timeout=15)
        assert unacknowledged(source, ingestor) == 0
