"""``group`` and ``parent`` filters: a collapsed fan-out's counts open exactly its members."""

from __future__ import annotations

from pathlib import Path

from server_events import EventFactory, TestClient

from stemtrace.server import create_app
from stemtrace.server.store import open_store

NOW = 1_790_100_000.0


def test_group_and_parent_filters_select_exactly_the_members(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    f = EventFactory()
    events = f.run("root", "proj.fan", 0)
    for i in range(6):  # one group of six, two of them failing, all children of the root
        events += f.run(f"m{i}", "proj.item", 1 + i, fail=i in (1, 4), group_id="g1", parent_id="root",
                        root_id="root", group_index=i)  # fmt: skip
    events += f.run("other", "proj.item", 9, fail=True, group_id="g2", root_id="root", parent_id="root")
    store.apply(events, {}, NOW)
    with TestClient(create_app(store=store, ingest=False)) as c:
        failed = c.get("/api/tasks", params={"group": "g1", "state": "FAILURE"}).json()["items"]
        members = c.get("/api/tasks", params={"group": "g1", "limit": 4}).json()
        children = c.get("/api/tasks", params={"parent": "root", "name": "proj.item"}).json()["items"]
        csv_text = c.get("/api/tasks.csv", params={"group": "g1", "state": "FAILURE"}).text
    store.close()
    assert sorted(t["id"] for t in failed) == ["m1", "m4"]
    assert len(members["items"]) == 4 and members["next_cursor"] is not None
    assert len(children) == 7
    assert sorted(line.split(",")[0] for line in csv_text.splitlines()[1:]) == ["m1", "m4"]
