"""The compact task row (docs/adr/0014-compact-storage.md, session 16): what the ``graph``
column keeps of a canvas reads as the whole one; ``root_id`` is NULL for a task that is its own
root and reads back through ``ROOT``; the ids a ``detail`` is packed with come back exactly."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.canvas import parse_canvas
from stemtrace.core.events import Event, decode_event
from stemtrace.server.store.body import event_log, load_events, load_record, pack
from stemtrace.server.store.codec import dumps
from stemtrace.server.store.task_row import ROOT, compact_graph, stored_root

FIXTURES = sorted((Path(__file__).parents[2] / "golden" / "fixtures").glob("*.json"))


def fixture_events() -> list[Event]:
    return [decode_event(raw) for path in FIXTURES for raw in json.loads(path.read_text())]


_TASK = {"type": "task", "id": "a", "name": "t.add", "group_id": "g", "group_index": 0}
CANVASES: list[Any] = [
    {"chain": [], "chord": None, "callbacks": [], "errbacks": [], "truncated": False},
    {
        "chain": [{**_TASK, "chord": {**_TASK, "id": "c", "group_index": None}}],
        "chord": None,
        "callbacks": [],
        "errbacks": [],
        "truncated": False,
    },
    {
        "chain": [{"type": "group", "id": "g", "tasks": [_TASK, {**_TASK, "group_index": 1}]}],
        "chord": {"type": "chord", "id": "x", "body": {**_TASK, "id": "b"}, "tasks": []},
        "callbacks": [{"type": "task", "name": "t.cb"}],
        "errbacks": [{"type": "task"}],
        "truncated": True,
    },
    {
        "chain": [
            {"type": "task", "id": "", "name": "", "chord": None},
            {"type": "task", "id": 'x,"chord":null', "name": 'n{"type":"task","id":'},  # in strings: kept
        ]
    },
]


def _fixture_canvases() -> list[Any]:
    return [e.data["canvas"] for e in fixture_events() if isinstance(e.data.get("canvas"), dict)]


@pytest.mark.parametrize("source", ["made", "fixtures"])
def test_a_compact_canvas_parses_as_the_whole_one(source: str) -> None:
    canvases = CANVASES if source == "made" else _fixture_canvases()
    assert canvases
    for raw in canvases:
        text = dumps([None, 0, 1, [raw]])
        compact = json.loads(compact_graph(text))[3][0]
        assert parse_canvas(compact) == parse_canvas(raw), raw
        assert len(compact_graph(text)) <= len(text)
    kept = json.loads(compact_graph(dumps([None, 0, 1, CANVASES[2:]])))[3]
    assert kept[0]["errbacks"] == [{"type": "task"}]  # a bare task without id or name keeps its type
    assert kept[0]["chain"][0]["tasks"][0] == {"id": "a", "name": "t.add", "group_id": "g", "group_index": 0}
    assert kept[1]["chain"][1] == {"id": 'x,"chord":null', "name": 'n{"type":"task","id":'}


@pytest.mark.parametrize(
    ("task_id", "root_id", "stored"),
    [("t", "t", None), ("t", "r", "r"), ("t", None, ""), ("t", "", "")],
)
def test_root_id_is_stored_null_for_its_own_task_and_read_back(
    task_id: str, root_id: str | None, stored: str | None
) -> None:
    assert stored_root(task_id, root_id) == stored
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE tasks (id TEXT, root_id TEXT)")
    conn.execute("INSERT INTO tasks VALUES (?, ?)", (task_id, stored))
    (read,) = conn.execute(f"SELECT {ROOT} FROM tasks").fetchone()
    assert read == (root_id or None)


def test_a_detail_packed_with_its_ids_holds_none_of_them_and_reads_back_exactly() -> None:
    ids = ("6f1c-task", "6f1c", "6f1c-task-parent", "g\u00e9-1")  # one inside another, non-ASCII
    record = {"id": ids[0], "root_id": ids[1], "parent_id": ids[2], "group_id": ids[3], "s": "\u0001\x02"}
    events = [e for e in fixture_events() if e.task_id][:3]
    log = event_log(events)
    blob = pack(ids, json.dumps(record, ensure_ascii=False), log)
    assert load_record(ids, blob) == record
    assert [e["src"]["seq"] for e in load_events(ids, blob)] == [e.src.seq for e in events]
    with pytest.raises(ValueError):  # read without its ids, the text is not JSON
        load_record(ids[:1], blob)
