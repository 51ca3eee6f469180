"""Every canvas type yields the expected events on real workers of each pool."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from celery import chain, chord, group
from tests.support import Recorder
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.integration

EXEC_ROLE = {"prefork": "child", "solo": "solo", "threads": "thread", "gevent": "greenlet"}


@pytest.fixture(scope="module", params=["prefork", "solo", "threads", "gevent"])
def rec(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    with Recorder(pool=request.param, concurrency=2) as recorder:
        recorder.pool = request.param  # type: ignore[attr-defined]
        yield recorder


class Seen:
    """Events of one recording, indexed by type and task id."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            if "task" in event:
                self.by[(event["type"], event["task"]["id"])].append(event)

    def one(self, etype: str, task_id: str) -> dict[str, Any]:
        found = self.by[(etype, task_id)]
        assert len(found) == 1, f"{etype} for {task_id}: {len(found)} events"
        return found[0]

    def published(self) -> list[dict[str, Any]]:
        """In the order of sending: processes flush on their own clocks, so arrival order differs."""
        return sorted((e for e in self.events if e["type"] == "task.published"), key=lambda e: e["ts"])


def _ran(seen: Seen, task_id: str, pool: str, result: Any) -> None:
    """The task went through received, started and succeeded in the right processes.

    postrun(SUCCESS) is sent as task.succeeded, never as a task.postrun of its own.
    """
    assert seen.one("task.received", task_id)["src"]["proc"] in ("main", "solo")
    started = seen.one("task.started", task_id)
    assert started["src"]["proc"] == EXEC_ROLE[pool]
    assert started["src"]["node"]
    assert seen.one("task.succeeded", task_id)["data"]["result"] == result
    assert seen.by[("task.postrun", task_id)] == []


def test_chain_sends_its_remainder_forward_and_links_steps(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["r"] = chain(t.add.s(1, 2), t.add.s(3), t.add.s(4)).apply_async()
        return holder["r"]

    seen = Seen(rec.record(scenario))
    first, second, third = seen.published()
    assert third["task"]["id"] == holder["r"].id
    assert [s["id"] for s in first["data"]["canvas"]["chain"]] == [second["task"]["id"], third["task"]["id"]]
    assert [s["id"] for s in second["data"]["canvas"]["chain"]] == [third["task"]["id"]]
    assert first["data"]["publisher_task_id"] is None and first["src"]["proc"] == "client"
    assert second["data"]["publisher_task_id"] == first["task"]["id"]
    assert third["data"]["parent_id"] == second["task"]["id"]
    assert {e["data"]["root_id"] for e in (first, second, third)} == {first["task"]["id"]}
    for event, result in zip((first, second, third), (3, 6, 10), strict=True):
        _ran(seen, event["task"]["id"], rec.pool, result)  # type: ignore[attr-defined]


def test_group_members_carry_group_id_and_index(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["r"] = group(t.add.s(1, 1), t.add.s(2, 2), t.add.s(3, 3)).apply_async()
        return holder["r"]

    seen = Seen(rec.record(scenario))
    members = seen.published()
    assert {e["data"]["group_id"] for e in members} == {holder["r"].id}
    assert sorted(e["data"]["group_index"] for e in members) == [0, 1, 2]
    for event in members:
        _ran(seen, event["task"]["id"], rec.pool, 2 * (event["data"]["group_index"] + 1))  # type: ignore[attr-defined]


def test_chord_header_names_its_callback(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["r"] = chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s()).apply_async()
        return holder["r"]

    seen = Seen(rec.record(scenario))
    body_id = holder["r"].id
    header = [e for e in seen.published() if e["task"]["name"] == "t.add"]
    assert len(header) == 2
    for event in header:
        assert event["data"]["canvas"]["chord"]["id"] == body_id
        assert event["data"]["canvas"]["chord"]["name"] == "t.tsum"
    body = seen.one("task.published", body_id)
    assert body["data"]["publisher_task_id"] in {e["task"]["id"] for e in header}
    assert body["data"]["group_index"] is None
    _ran(seen, body_id, rec.pool, 6)  # type: ignore[attr-defined]


def test_links_errbacks_and_spawned_tasks(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["linked"] = t.add.apply_async((1, 1), link=t.add.s(10), link_error=t.echo.si("err"))
        holder["spawner"] = t.spawner.delay(2)
        wait_result(holder["spawner"], 20)
        return holder["linked"]

    seen = Seen(rec.record(scenario))
    linked_id = holder["linked"].id
    canvas = seen.one("task.published", linked_id)["data"]["canvas"]
    assert [c["name"] for c in canvas["callbacks"]] == ["t.add"]
    assert [c["name"] for c in canvas["errbacks"]] == ["t.echo"]
    callback = [e for e in seen.published() if e["data"]["parent_id"] == linked_id]
    assert len(callback) == 1 and callback[0]["data"]["publisher_task_id"] == linked_id
    spawner_id = holder["spawner"].id
    spawned = [e for e in seen.published() if e["data"]["publisher_task_id"] == spawner_id]
    assert len(spawned) == 2
    assert all(e["data"]["root_id"] == spawner_id for e in spawned)


def test_worker_announces_itself_with_registered_tasks(rec: Recorder) -> None:
    online = [e for e in rec.worker_events if e["type"] == "worker.online"]
    assert len(online) == 1
    data = online[0]["data"]
    assert data["pool"] == rec.pool  # type: ignore[attr-defined]
    assert "t.add" in data["registered"] and data["versions"]["celery"]
    assert data["queues"] == [rec.settings.queue]
