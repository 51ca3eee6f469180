"""Every id stemtrace knows resolves: ``GET /api/tasks/{id}`` of a step known only from a canvas.

A user pastes an id from ``AsyncResult`` or a log. For a chain step that never ran because
the step before it failed, or one not sent yet, the workflow view draws it; the task
endpoint must answer it too (state, name, workflow, and for a SKIPPED step why), stored
through the real ingest path from recordings of real Celery runs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.store import SqlStore, open_store

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GOLDEN = Path(__file__).parents[2] / "golden" / "fixtures"
NOW = 1_790_300_000.0


def _raw(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((GOLDEN / f"{name}__celery-5.7.0.json").read_text())
    return data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'planned.db'}")
    yield s
    s.close()


def _client(store: SqlStore) -> TestClient:
    return TestClient(create_app(store=store, ingest=False))


def _graph_node(client: TestClient, any_id: str, node_id: str) -> dict[str, Any]:
    graph = client.get(f"/api/workflows/{any_id}").json()
    node: dict[str, Any] = next(n for n in graph["nodes"] if n["id"] == node_id)
    return node


def test_skipped_chain_steps_resolve_with_why(store: SqlStore) -> None:
    raw = _raw("chain_failing")
    store.apply([decode_event(e) for e in raw], {}, NOW)
    stored = {e["task"]["id"] for e in raw}
    failed = next(e["task"]["id"] for e in raw if e["type"] == "task.failed")
    with _client(store) as client:
        graph = client.get(f"/api/workflows/{failed}").json()
        skipped = [n for n in graph["nodes"] if n["state"] == "SKIPPED"]
        assert len(skipped) == 2 and not {n["id"] for n in skipped} & stored
        for node in skipped:
            resp = client.get(f"/api/tasks/{node['id']}")
            assert resp.status_code == 200, resp.text
            task = resp.json()
            assert task["state"] == "SKIPPED"
            assert task["name"] == node["name"] == "t.add"
            assert task["workflow_id"] == graph["id"]
            assert task["skipped_by"] == failed == node["skipped_by"]
            assert failed in task["skipped_reason"] and "FAILURE" in task["skipped_reason"]
            assert task["skipped_reason"] == node["skipped_reason"]
            assert task["events"] == [] and task["attempts"] == [] and task["children"] == []
        # The task list holds what was sent, not the planned steps (they are the workflow's).
        listed = {t["id"] for t in client.get("/api/tasks?limit=100").json()["items"]}
        assert listed == stored


def test_planned_steps_resolve_while_the_chain_runs(store: SqlStore) -> None:
    raw = _raw("chain")
    head = raw[0]["task"]["id"]
    # Only the head's own events: the next two steps are known from its canvas alone.
    store.apply([decode_event(e) for e in raw if e["task"]["id"] == head], {}, NOW)
    with _client(store) as client:
        graph = client.get(f"/api/workflows/{head}").json()
        planned = [n for n in graph["nodes"] if n["state"] == "PLANNED"]
        assert len(planned) == 2
        for node in planned:
            task = client.get(f"/api/tasks/{node['id']}").json()
            assert (task["state"], task["name"], task["workflow_id"]) == ("PLANNED", "t.add", graph["id"])
            assert task["skipped_reason"] is None
            assert _graph_node(client, node["id"], node["id"])["state"] == "PLANNED"  # resolves both ways


def test_ids_that_are_no_task_stay_404(store: SqlStore) -> None:
    raw = _raw("group")
    store.apply([decode_event(e) for e in raw], {}, NOW)
    group_id = next(e["data"]["group_id"] for e in raw if e["data"].get("group_id"))
    with _client(store) as client:
        assert client.get(f"/api/workflows/{group_id}").status_code == 200  # a group id names its workflow
        assert client.get(f"/api/tasks/{group_id}").status_code == 404  # but is no task
        assert client.get("/api/tasks/no-such-id").status_code == 404
