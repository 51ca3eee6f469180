"""Once a workflow is over none of its steps stays PLANNED, on a real worker.

Three real ways a planned step never comes, each compared with Celery's result backend (Redis):

* a chord whose callback Celery could not send (its arguments do not encode): Celery records a
  ``ChordError`` for the callback in the backend and sends nothing, the header all succeeded;
* a chain a task stopped by clearing ``request.chain``: the backend knows nothing of the rest;
* a chord whose header member was revoked: Celery never sends the callback (a ``ChordError``
  in the backend); stemtrace skips it because of the revoked member, without waiting.

The events a real worker sent are stored by the real ingest path; the server's maintenance
runs with its clock moved past ``--never-sent-after`` instead of the test waiting minutes.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord
from tests.support import AppSettings, Recorder

from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.maintenance import Maintenance
from stemtrace.server.store import SqlStore, open_store

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
QUIET = 300.0


@pytest.fixture(scope="module")
def rec(redis_url: str) -> Iterator[Recorder]:
    # Results pickled, task messages JSON: a header member can return what a callback's
    # message cannot carry.
    settings = AppSettings(
        broker_url=redis_url,
        backend_url=redis_url,
        conf={
            "result_serializer": "pickle",
            "accept_content": ["json", "pickle"],
            "result_accept_content": ["json", "pickle"],
        },
    )
    # A worker accepting pickle refuses to run as root (CI containers) unless told.
    with Recorder(pool="solo", settings=settings, worker_env={"C_FORCE_ROOT": "1"}) as recorder:
        yield recorder


class Server:
    """A store holding the recorded events, its API and its maintenance with a movable clock."""

    def __init__(self, events: list[dict[str, Any]], tmp_path: Path) -> None:
        self.now = time.time()
        self.store: SqlStore = open_store(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
        self.store.apply([decode_event(e) for e in events], {}, self.now)
        self.maintenance = Maintenance(
            self.store,
            retention=86400.0,
            failure_retention=86400.0,
            heartbeat_interval=1e9,
            never_sent_after=QUIET,
            clock=lambda: self.now,
        )
        self.client = TestClient(create_app(store=self.store, ingest=False))

    def views(self, any_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        page: dict[str, Any] = self.client.get(f"/api/workflows/{any_id}").json()
        items = self.client.get("/api/workflows?limit=100").json()["items"]
        (row,) = [w for w in items if w["id"] == page["id"]]
        for key in ("state", "name", "task_count", "counts", "finished_at"):
            assert page[key] == row[key], key  # the list and the page agree, always
        return page, row

    def quiet(self) -> None:
        """The workflow got nothing new for longer than ``--never-sent-after``."""
        self.now += QUIET + 1.0
        self.maintenance.run_once()

    def close(self) -> None:
        self.client.close()
        self.store.close()


@pytest.fixture
def server_of(tmp_path: Path) -> Iterator[Any]:
    made: list[Server] = []

    def make(events: list[dict[str, Any]]) -> Server:
        made.append(Server(events, tmp_path))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _node(page: dict[str, Any], task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in page["nodes"] if n["id"] == task_id)
    return found


def test_a_chord_callback_celery_could_not_send(rec: Recorder, server_of: Any) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        header = [t.echo.s({1, 2}).set(serializer="pickle"), t.add.s(1, 1)]
        holder["r"] = chord(header, t.echo.s()).apply_async()
        return holder["r"]

    events = rec.record(scenario, settle_s=1.5)
    callback = holder["r"]
    # What Celery's result backend says: the callback failed with a ChordError, never ran.
    assert callback.state == "FAILURE" and type(callback.result).__name__ == "ChordError"
    assert "Callback error" in str(callback.result)
    assert not [e for e in events if e.get("task", {}).get("id") == callback.id]
    server = server_of(events)
    page, _ = server.views(callback.id)
    assert _node(page, callback.id)["state"] == "PLANNED" and page["state"] == "RUNNING"
    header_ids = {n["id"] for n in page["nodes"] if n["id"] != callback.id}
    assert {n["state"] for n in page["nodes"] if n["id"] in header_ids} == {"SUCCESS"}

    server.quiet()
    page, _ = server.views(callback.id)
    node = _node(page, callback.id)
    assert node["state"] == "SKIPPED" and node["skipped_by"] in header_ids
    assert node["skipped_reason"].startswith("never sent: ")
    assert page["state"] == "FAILURE"  # the backend's callback is a FAILURE; the work was lost
    task = server.client.get(f"/api/tasks/{callback.id}").json()
    assert task["state"] == "SKIPPED" and task["skipped_reason"] == node["skipped_reason"]


def test_a_chain_a_task_stopped_by_clearing_request_chain(rec: Recorder, server_of: Any) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["r"] = chain(t.add.s(1, 1), t.chain_stopper.s(), t.add.s(5), t.add.s(6)).apply_async()
        return holder["r"].parent.parent  # the stopper: the steps after it never run

    events = rec.record(scenario, settle_s=1.5)
    last = holder["r"]
    third, stopper = last.parent, last.parent.parent
    assert stopper.get(timeout=5) == 2
    assert third.state == last.state == "PENDING"  # the result backend never heard of them
    server = server_of(events)
    page, _ = server.views(stopper.id)
    assert {_node(page, i)["state"] for i in (third.id, last.id)} == {"PLANNED"}
    assert page["state"] == "RUNNING"

    server.quiet()
    page, row = server.views(stopper.id)
    for step in (third.id, last.id):
        node = _node(page, step)
        assert node["state"] == "SKIPPED" and node["skipped_by"] == stopper.id
        assert node["skipped_reason"].startswith(f"never sent: t.chain_stopper ({stopper.id}), before it, ")
    assert page["state"] == "FAILURE" and page["counts"]["SKIPPED"] == 2 and page["task_count"] == 4
    assert row["name"] == "t.add"


def test_a_chord_whose_header_member_was_revoked(rec: Recorder, server_of: Any) -> None:
    holder: dict[str, Any] = {}
    member = str(uuid.uuid4())

    def scenario(t: Any) -> Any:
        header = [t.add.s(1, 1), t.add.s(2, 2).set(task_id=member, countdown=2)]
        holder["r"] = chord(header, t.tsum.s()).apply_async()
        t.app.control.revoke(member)
        return holder["r"]

    events = rec.record(scenario, settle_s=1.5)
    callback = holder["r"]
    assert rec.tasks is not None
    assert rec.tasks.app.AsyncResult(member).state == "REVOKED"
    assert callback.state == "FAILURE" and type(callback.result).__name__ == "ChordError"
    server = server_of(events)
    page, _ = server.views(callback.id)
    # Skipped at once, because of the revoked member: no waiting for the workflow to be quiet.
    node = _node(page, callback.id)
    assert node["state"] == "SKIPPED" and node["skipped_by"] == member
    assert "REVOKED" in node["skipped_reason"] and page["state"] == "REVOKED"
    server.quiet()
    assert server.views(callback.id)[0] == page
    assert server.maintenance.never_sent == 0
