"""Steps still planned once a workflow is over were never sent: the maintenance thread says so,
the list row, the page and the planned id agree, and a late message undoes it (SQLite and
PostgreSQL, through the real ingest path, from a recording of a real Celery chain)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.maintenance import Maintenance
from stemtrace.server.store import SqlStore

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GOLDEN = Path(__file__).parents[1] / "golden" / "fixtures"
QUIET = 300.0


def _chain() -> list[dict[str, Any]]:
    """chain(add.s(1, 1), add.s(2), add.s(3)) on Celery 5.7: 12 events, three tasks."""
    data: list[dict[str, Any]] = json.loads((GOLDEN / "chain__celery-5.7.0.json").read_text())
    return data


def _maintenance(store: SqlStore, now: list[float]) -> Maintenance:
    return Maintenance(
        store,
        retention=7 * 86400.0,
        failure_retention=30 * 86400.0,
        heartbeat_interval=1e9,  # no worker goes offline here
        never_sent_after=QUIET,
        clock=lambda: now[0],
    )


def _views(client: TestClient, any_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    page: dict[str, Any] = client.get(f"/api/workflows/{any_id}").json()
    (row,) = [w for w in client.get("/api/workflows?limit=50").json()["items"] if w["id"] == page["id"]]
    return page, row


def test_a_chain_whose_second_step_never_came(store: SqlStore) -> None:
    raw = _chain()
    head = raw[0]["task"]["id"]
    first_only = [e for e in raw if e["task"]["id"] == head]
    assert [e["type"] for e in first_only][-1] == "task.succeeded"
    t0 = max(e["ts"] for e in raw) + 1.0
    store.apply([decode_event(e) for e in first_only], {}, t0)
    now = [t0 + QUIET - 1.0]
    maintenance = _maintenance(store, now)
    with TestClient(create_app(store=store, ingest=False)) as client:
        page, row = _views(client, head)
        planned = [n for n in page["nodes"] if n["state"] == "PLANNED"]
        assert page["state"] == row["state"] == "RUNNING" and len(planned) == 2
        maintenance.run_once()  # quiet for less than --never-sent-after: nothing changes
        assert maintenance.never_sent == 0
        assert _views(client, head)[0] == page

        now[0] = t0 + QUIET + 1.0
        maintenance.run_once()
        assert maintenance.never_sent == 1
        page, row = _views(client, head)  # the same client: a cached graph would be stale
        skipped = [n for n in page["nodes"] if n["id"] in {p["id"] for p in planned}]
        assert {n["state"] for n in skipped} == {"SKIPPED"}
        for node in skipped:
            assert node["skipped_by"] == head
            assert node["skipped_reason"].startswith(f"never sent: t.add ({head}), before it, finished at ")
            task = client.get(f"/api/tasks/{node['id']}").json()
            assert task["state"] == "SKIPPED" and task["skipped_reason"] == node["skipped_reason"]
        assert page["state"] == row["state"] == "FAILURE"
        assert page["counts"] == row["counts"] and page["counts"]["SKIPPED"] == 2
        assert page["task_count"] == row["task_count"] == 3 and page["name"] == row["name"] == "t.add"
        assert page["finished_at"] is not None and page["finished_at"] == row["finished_at"]
        assert [w["id"] for w in client.get("/api/workflows?state=FAILURE").json()["items"]] == [page["id"]]
        maintenance.run_once()  # found once: a later round leaves it alone
        assert maintenance.never_sent == 1

        # The message was only late: the rest of the chain arrives, and the steps are what they are.
        store.apply([decode_event(e) for e in raw if e["task"]["id"] != head], {}, now[0] + 1.0)
        page, row = _views(client, head)
        assert page["state"] == row["state"] == "SUCCESS"
        assert {n["state"] for n in page["nodes"]} == {"SUCCESS"} and page["counts"] == row["counts"]


def test_a_late_first_event_of_the_next_step_reopens_the_workflow(store: SqlStore) -> None:
    raw = _chain()
    head = raw[0]["task"]["id"]
    second = raw[3]["task"]["id"]
    t0 = max(e["ts"] for e in raw) + 1.0
    store.apply([decode_event(e) for e in raw if e["task"]["id"] == head], {}, t0)
    now = [t0 + QUIET + 1.0]
    maintenance = _maintenance(store, now)
    maintenance.run_once()
    with TestClient(create_app(store=store, ingest=False)) as client:
        assert _views(client, head)[0]["state"] == "FAILURE"
        # Only the second step's publish arrives: it runs, so nothing is never sent any more,
        # and the third step is planned again until the second finishes.
        store.apply([decode_event(raw[3])], {}, now[0] + 1.0)
        page, row = _views(client, head)
        states = {n["id"]: n["state"] for n in page["nodes"]}
        assert states[second] == "PENDING" and sorted(states.values()) == ["PENDING", "PLANNED", "SUCCESS"]
        assert page["state"] == row["state"] == "RUNNING" and page["counts"] == row["counts"]


FIXTURES = sorted([*GOLDEN.glob("*.json"), *(GOLDEN.parent / "fixtures_extra").glob("*.json")])


def test_every_golden_recording_cut_short_then_quiet_agrees_everywhere(store: SqlStore) -> None:
    """The tasks first seen in the first half of every recording of a real Celery run, as if
    the others never came:
    once quiet, no workflow whose tasks are all final keeps a PLANNED step, and the list, the
    page and every planned id's answer agree."""
    from stemtrace.core.workflow import build_workflow
    from stemtrace.server.store import WorkflowQuery

    t0 = 0.0
    for path in FIXTURES:
        raw: list[dict[str, Any]] = json.loads(path.read_text())
        # Every event of the tasks first seen in the first half: those that ran, ran whole.
        early = {e["task"]["id"] for e in raw[: max(1, len(raw) // 2)] if "task" in e}
        half = [e for e in raw if "task" not in e or e["task"]["id"] in early]
        t0 = max(t0, max(e["ts"] for e in raw) + 1.0)
        store.apply([decode_event(e) for e in half], {}, t0)
    now = [t0 + QUIET + 1.0]
    maintenance = _maintenance(store, now)
    maintenance.run_once()
    assert maintenance.never_sent >= 15  # 20 of the recordings' workflows, when written
    rows = store.list_workflows(WorkflowQuery(limit=1000)).items
    settled = 0
    with TestClient(create_app(store=store, ingest=False)) as client:
        for row in rows:
            page = build_workflow(row.id, store.workflow_skeletons(row.id), settled_at=row.settled_at)
            listed = (row.state, row.name, row.task_count, row.counts)
            assert listed == (page.state.value, page.name, page.task_count, dict(page.counts)), row.id
            real = [n for n in page.nodes if not n.plumbing and n.state.value not in ("PLANNED", "SKIPPED")]
            if all(n.state.value in FINAL for n in real):
                assert not [n for n in page.nodes if n.state.value == "PLANNED"], row.id
            settled += row.settled_at is not None
            for node in page.nodes:
                if node.state.value in ("PLANNED", "SKIPPED") and node.attempts == 0 and node.sent_at is None:
                    task = client.get(f"/api/tasks/{node.id}").json()
                    assert (task["state"], task["skipped_reason"], task["skipped_by"]) == (
                        node.state.value,
                        node.skipped_reason,
                        node.skipped_by,
                    ), node.id
    assert settled == maintenance.never_sent


FINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "IGNORED", "LOST"}
