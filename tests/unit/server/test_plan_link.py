"""``write._link``, the union-find a batch's plan runs, groups ids as the core's ``UnionFind`` does.

``_link`` skips an event whose parent, root and group ids repeat the last ones linked for the
same task (most events of a task repeat its message's). Generated batches where a task's events
name different ids, drop them, or carry a ``chord_unlock``'s ids must still give exactly the
components the reference builds from every event.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stemtrace.core.events import Event, Source
from stemtrace.core.identity import CHORD_UNLOCK, UnionFind
from stemtrace.server.store.write import _link

_IDS = ["a", "b", "c", "d", "e", "f"]
_maybe_id = st.sampled_from([None, None, "", *_IDS])


@st.composite
def batches(draw: st.DrawFn) -> dict[str, list[Event]]:
    by_task: dict[str, list[Event]] = {}
    seq = 0
    for tid in draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=5, unique=True)):
        events = []
        for _ in range(draw(st.integers(1, 5))):
            seq += 1
            data: dict[str, Any] = {"parent_id": draw(_maybe_id), "root_id": draw(_maybe_id)}
            if draw(st.booleans()):
                data["group_id"] = draw(_maybe_id)
            name = "job"
            if draw(st.integers(0, 5)) == 0:
                name = CHORD_UNLOCK
                data["args"] = [draw(_maybe_id), {"options": {"task_id": draw(_maybe_id)}}]
            etype = draw(st.sampled_from(["task.published", "task.received", "task.started"]))
            source = Source("h", 1, "i", seq, proc="child", node="w@h")
            events.append(Event(etype, float(seq), source, tid, name, data))
        by_task[tid] = events
    return by_task


@settings(max_examples=600, deadline=None)
@given(batches())
def test_link_groups_ids_like_the_union_find(by_task: dict[str, list[Event]]) -> None:
    reference = UnionFind()
    for tid, events in by_task.items():
        reference.add(tid)
        for event in events:
            reference.add_event(event)
    expected = {frozenset(group) for group in reference.groups().values()}
    components, first_ts, _ = _link(by_task)
    assert {frozenset(c) for c in components} == expected
    assert first_ts == {tid: min(e.ts for e in events) for tid, events in by_task.items()}


def test_a_later_event_naming_another_parent_is_linked() -> None:
    def event(seq: int, parent: str) -> Event:
        source = Source("h", 1, "i", seq, proc="child", node="w@h")
        return Event("task.received", float(seq), source, "t", "job", {"parent_id": parent, "root_id": "r"})

    components, _, _ = _link({"t": [event(1, "p1"), event(2, "p2"), event(3, "p1")]})
    assert [sorted(c) for c in components] == [["p1", "p2", "r", "t"]]
