"""``write._link``, the grouping a batch's plan runs before it reads the stored workflows.

It groups every id the batch's events link (``core.identity.linked_ids``) with the core's
``UnionFind``; these tests hold what the plan adds around it: one component per workflow,
each task's first timestamp and the last ``root_id`` it states.
"""

from __future__ import annotations

from typing import Any

from stemtrace.core.events import Event, Source
from stemtrace.core.identity import CHORD_UNLOCK
from stemtrace.server.store.write import _link


def _event(tid: str, ts: float, etype: str = "task.received", name: str = "job", **data: Any) -> Event:
    return Event(etype, ts, Source("h", 1, "i", int(ts), proc="child", node="w@h"), tid, name, data)


def test_a_later_event_naming_another_parent_is_linked() -> None:
    events = [_event("t", 1, parent_id="p1", root_id="r"), _event("t", 2, parent_id="p2", root_id="r")]
    components, _, _ = _link({"t": events})
    assert [sorted(c) for c in components] == [["p1", "p2", "r", "t"]]


def test_unrelated_tasks_stay_apart_and_a_group_joins_its_members() -> None:
    by_task = {
        "a": [_event("a", 3, group_id="g", root_id="a")],
        "b": [_event("b", 1, group_id="g", root_id="b")],
        "c": [_event("c", 2)],
    }
    components, _, _ = _link(by_task)
    assert sorted(sorted(c) for c in components) == [["a", "b", "g"], ["c"]]


def test_a_chord_unlock_links_the_chord_it_waits_for() -> None:
    unlock = _event("u", 1, name=CHORD_UNLOCK, args=["group-1", {"options": {"task_id": "callback"}}])
    components, _, _ = _link({"u": [unlock]})
    assert sorted(sorted(c) for c in components) == [["callback", "group-1", "u"]]


def test_first_timestamp_and_the_last_root_stated() -> None:
    events = [_event("t", 5, root_id="r1"), _event("t", 2, root_id=""), _event("t", 9, root_id="r2")]
    _, first_ts, root_hint = _link({"t": events})
    assert first_ts == {"t": 2}
    assert root_hint == {"t": "r2"}
