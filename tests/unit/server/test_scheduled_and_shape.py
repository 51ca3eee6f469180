"""Scheduled work and shape names through the store and the HTTP API: list and page agree.

The workflows come from real Celery workers (the golden fixtures, recorded on Celery 5.3
and 5.7) or are built as the library sends them (``EventFactory``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from server_events import EventFactory, TestClient

from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0
FIXTURES = Path(__file__).parents[2] / "golden" / "fixtures"
SHAPES = {
    "chain": "chain: add → add → add",
    "chain_failing": "chain: add → fail → add → add",
    "chord": "chord: add \u00d72 → tsum",
    "chain_group_upgrade": "chord: add \u00d72 → tsum",
    "chord_mid_chain": "chord: add \u00d72 → tsum",
    "chord_unlock": "chord: 2 tasks → tsum",
    "group": "group: add \u00d72",
    "group_of_chains": "group: add \u00d72",
    "link_error": None,
    "single": None,
    "spawner": None,
}


@pytest.mark.parametrize("version", ["5.3.6", "5.7.0"])
@pytest.mark.parametrize("scenario", sorted(SHAPES))
def test_list_and_page_name_a_recorded_workflow_by_its_shape(
    store: SqlStore, scenario: str, version: str
) -> None:
    raw = json.loads((FIXTURES / f"{scenario}__celery-{version}.json").read_text())
    events = [decode_event(r) for r in raw]
    # Two batches: the summary is rewritten from the store each time, as ingest does.
    store.apply(events[: len(events) // 2], {}, NOW)
    store.apply(events[len(events) // 2 :], {}, NOW + 1)
    with TestClient(create_app(store=store, ingest=False)) as c:
        (listed,) = c.get("/api/workflows").json()["items"]
        page = c.get(f"/api/workflows/{listed['id']}").json()
    assert listed["shape"] == page["shape"] == SHAPES[scenario]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def test_a_workflow_waiting_only_for_etas_is_scheduled_in_list_page_and_tasks(store: SqlStore) -> None:
    f = EventFactory(t0=NOW)
    due, later = NOW + 3600, NOW + 7200
    events = f.run("root", "proj.plan", 0)
    for tid, eta in (("r1", due), ("r2", later)):
        events += [
            f.event("task.published", tid, "proj.remind", 1, root_id="root", parent_id="root", eta=_iso(eta)),
            f.event("task.received", tid, "proj.remind", 1.1, queue="celery", eta=_iso(eta)),
        ]
    store.apply(events, {}, NOW + 2)
    app = create_app(store=store, ingest=False)
    with TestClient(app) as c:
        (listed,) = c.get("/api/workflows").json()["items"]
        page = c.get("/api/workflows/root").json()
        tasks = {t["id"]: t for t in c.get("/api/tasks", params={"workflow": "root"}).json()["items"]}
        detail = c.get("/api/tasks/r1").json()
        assert listed["state"] == page["state"] == "RUNNING"
        assert listed["scheduled_for"] == page["scheduled_for"] == "2026-09-22T19:00:00Z"
        assert datetime.fromisoformat(listed["scheduled_for"]).timestamp() == due
        assert tasks["r1"]["eta"] == detail["eta"] == listed["scheduled_for"]
        assert tasks["root"]["eta"] is None
        nodes = {n["id"]: n for n in page["nodes"]}
        assert datetime.fromisoformat(nodes["r2"]["eta"]).timestamp() == later

        # One of them starts: the workflow runs again, in the list and on the page.
        store.apply([f.event("task.started", "r1", "proj.remind", 3601)], {}, NOW + 3601)
        (listed,) = c.get("/api/workflows").json()["items"]
        page = c.get("/api/workflows/root").json()
        assert listed["scheduled_for"] is None and page["scheduled_for"] is None
        assert listed["state"] == page["state"] == "RUNNING"


def test_task_stats_count_retries_for_retry_storms(store: SqlStore) -> None:
    # Recorded on a real worker: one task retried twice then succeeded, one that gave up after five.
    for scenario in ("retry_recovers", "retry_gives_up", "single"):
        raw = json.loads((FIXTURES / f"{scenario}__celery-5.7.0.json").read_text())
        store.apply([decode_event(r) for r in raw], {}, NOW)
    with TestClient(create_app(store=store, ingest=False)) as c:
        window = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
        items = {i["name"]: i for i in c.get("/api/stats/tasks", params=window).json()["items"]}
        retries = {
            t["id"]: t["retries"] for t in c.get("/api/tasks", params={"name": "t.flaky"}).json()["items"]
        }
    assert sorted(retries.values()) == [2, 5]
    flaky = items["t.flaky"]
    assert (flaky["total"], flaky["retried"], flaky["retries"], flaky["failed"]) == (2, 2, 7, 1)
    assert (items["t.add"]["retried"], items["t.add"]["retries"]) == (0, 0)
