"""A parent with 100,000 children: the graph comes collapsed, small, with exact counts.

The tasks go in through the store's ingest path (batches of events, as the ingest loop
applies them); the graph is asked over HTTP. Drawn task by task this workflow is a 45 MB
response built from 100,000 records held at once; collapsed by the server it is one node
for the children with their counts by state and a sample of member ids, failed first.
The bounds asserted are on bytes and on the Python memory the request allocates
(``tracemalloc``), not on time.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import warnings
from collections.abc import Iterator

import pytest
from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.server import create_app
from stemtrace.server.store import SqlStore, open_store
from stemtrace.server.store.fanout import COLLAPSE_OVER, SAMPLE_IDS

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = 1_790_400_000.0
CHILDREN = 100_000
FAILED = 1_000  # every 100th child fails
RUNNING = 500  # the last 500 have started and not finished
BYTES_MAX = 64 * 1024
PEAK_MAX = 40 * 1024 * 1024  # what the request may allocate at its peak (the full graph took ~300 MB)


def _children(f: EventFactory) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for i in range(CHILDREN):
        tid = f"child-{i:06d}"
        at = 1.0 + i * 0.001
        batch.append(
            f.event("task.published", tid, "proj.resize", at, parent_id="root", root_id="root", retries=0)
        )
        batch.append(f.event("task.started", tid, "proj.resize", at + 0.0005))
        if i >= CHILDREN - RUNNING:
            pass  # still running
        elif i % 100 == 7:
            batch.append(f.event("task.failed", tid, "proj.resize", at + 0.0008, exception_type="OSError"))
        else:
            batch.append(f.event("task.succeeded", tid, "proj.resize", at + 0.0008, runtime=0.0003))
        if len(batch) >= 6_000:
            yield batch
            batch = []
    if batch:
        yield batch


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    path = tmp_path_factory.mktemp("huge") / "huge.db"
    store = open_store(f"sqlite:///{path}")
    f = EventFactory(t0=NOW)
    store.apply(f.run("root", "proj.fan_out", 0.0), {}, NOW)
    for batch in _children(f):
        store.apply(batch, {}, NOW)
    yield store
    store.close()


def test_the_graph_of_100000_children_is_collapsed_small_and_exact(huge: SqlStore) -> None:
    row = huge.get_workflow("root")
    assert row is not None and row.task_count == CHILDREN + 1 > COLLAPSE_OVER
    with TestClient(create_app(store=huge, ingest=False)) as client:
        gc.collect()
        tracemalloc.start()
        try:
            resp = client.get("/api/workflows/root")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status_code == 200, resp.text[:500]
        assert len(resp.content) < BYTES_MAX, len(resp.content)
        assert peak < PEAK_MAX, peak
        graph = resp.json()
        # The summary is the whole workflow's, the same as the Workflows list says.
        listed = {w["id"]: w for w in client.get("/api/workflows").json()["items"]}["root"]
        for key in ("state", "name", "task_count", "counts"):
            assert graph[key] == listed[key], key
        assert graph["task_count"] == CHILDREN + 1 and graph["state"] == "RUNNING"
        assert graph["counts"]["FAILURE"] == FAILED - RUNNING // 100  # the running tail fails none
        # Two nodes: the parent and its children, collapsed, joined by one edge.
        assert graph["collapsed_tasks"] == CHILDREN
        by_id = {n["id"]: n for n in graph["nodes"]}
        assert set(by_id) == {"root", next(i for i in by_id if i != "root")}
        fan = next(n for n in graph["nodes"] if n["collapsed"])
        info = fan["collapsed"]
        assert info["count"] == CHILDREN and info["parent_id"] == "root" and fan["name"] == "proj.resize"
        counts = {k: v for k, v in info["counts"].items() if v}
        assert counts == {
            "SUCCESS": CHILDREN - RUNNING - graph["counts"]["FAILURE"],
            "FAILURE": graph["counts"]["FAILURE"],
            "STARTED": RUNNING,
        }
        assert fan["state"] == "FAILURE"  # the worst member's
        members = info["member_ids"]
        assert len(members) == SAMPLE_IDS
        failed = {f"child-{i:06d}" for i in range(CHILDREN - RUNNING) if i % 100 == 7}
        assert set(members) <= failed and members == sorted(members)  # failed first, in send order
        assert graph["edges"] == [{"source": "root", "target": fan["id"], "kind": "spawn"}]
        # The task list the UI links the node to holds exactly those failures.
        page = client.get("/api/tasks?workflow=root&state=FAILURE&limit=1000").json()["items"]
        assert len(page) == graph["counts"]["FAILURE"]
        assert json.loads(resp.content) == graph
