"""The ingest writer's encodings store what ``json`` would have stored.

``body.event_log`` and ``codec.dumps`` encode with orjson (falling back to ``json`` for
what orjson cannot encode exactly) and ``task_row.record_dict`` skips ``asdict``. orjson's
text may spell a number differently (``1e-7``), so these check that the stored text parses
to the value ``json``'s text parses to (compared by re-encoding, so ``NaN`` compares), and
that non-finite numbers, big integers and non-string keys still come out as ``json`` wrote them.
"""

from __future__ import annotations

import json
import types
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import Event, Source, decode_event
from stemtrace.core.model import Attempt, TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.task import fold_task
from stemtrace.server.jsonfast import NonFinite, loads
from stemtrace.server.store.body import event_log, load_events, load_record, pack
from stemtrace.server.store.codec import dumps
from stemtrace.server.store.task_row import TASK_COLUMNS, record_dict, task_row

_DETAIL = [c.strip() for c in TASK_COLUMNS.split(",")].index("detail")  # a task row's stored detail

FIXTURES = sorted((Path(__file__).parents[2] / "golden" / "fixtures").glob("*.json"))
REFERENCE = json.JSONEncoder(separators=(",", ":"), default=repr, ensure_ascii=False, check_circular=False)


def same_value(stored: str, value: Any) -> bool:
    """``stored`` parses to what ``json`` encodes ``value`` as (re-encoded: ``NaN`` compares)."""
    return REFERENCE.encode(json.loads(stored)) == REFERENCE.encode(value)


def fixture_events() -> list[Event]:
    return [decode_event(raw) for path in FIXTURES for raw in json.loads(path.read_text())]


def odd_events() -> list[Event]:
    src = Source('h\u00e9\n"q\\', 7, "inst\u2028", 3, "child", None)
    # A NaN in data arrives as the json fallback reads it (orjson refuses the literal).
    nan = loads(b"NaN")
    odd_data: dict[Any, Any] = {"big": 10**30, "s": "\ud800", 1: "int key", "f": 1e-7}  # an int key
    return [
        Event("task.started", 1.5, src, "t\x00", None, {"a": [1, 2.5, None, {"é": "\x01"}], "n": nan}),
        Event("task.started", 1.5, src, "t", None, odd_data),
        Event("worker.heartbeat", 2.0, Source("h", 1, "i", 1), None, None, {}),
        Event("task.started", float("inf"), Source("h", 1, "i", 2), "t", "n", {}),  # not repr's spelling
        Event("task.started", 3, Source("h", True, "i", 4), "t", "n", {"x": 1}),  # int ts, bool pid
        Event("task.started", 4.0, Source("h", 1, "i", 5), "t", "n", types.MappingProxyType({"x": 1})),
        Event("task.started", 5.0, Source("h", 1, "i", 6, "main", "w@h"), "t", "", {"k": (1, 2)}),
    ]


@pytest.mark.parametrize("source", ["fixtures", "odd"])
def test_stored_event_log_gives_back_the_encoded_dicts(source: str) -> None:
    """A task's stored log (``body``) reads back as each event's ``e.to_dict()``, in order."""
    events = [e for e in (fixture_events() if source == "fixtures" else odd_events()) if e.task_id]
    assert events
    for e in events:
        tid = e.task_id or ""
        record = json.dumps({"id": tid, "parent_id": tid + "x", "n": "\u0001"})
        blob = pack((tid, None, tid + "x", ""), record, event_log([e, e]))
        assert load_record((tid, None, tid + "x", ""), blob) == json.loads(record)
        stored = load_events((tid, None, tid + "x", ""), blob)
        assert [REFERENCE.encode(s) for s in stored] == [REFERENCE.encode(e.to_dict())] * 2, e
    if source == "odd":  # what orjson cannot encode exactly is json's text, byte for byte
        assert b'"big":1000000000000000000000000000000' in event_log([events[1]])
        assert b'"1":"int key"' in event_log([events[1]])
        assert b'"n":NaN' in event_log([events[0]])


@pytest.mark.parametrize(
    "value",
    [
        *(None, "é\n", 1.5, 1e-7, NonFinite("-inf"), [NonFinite("nan")], 10**30, True, [1, (2, 3)]),
        *({"a": {"b": None}}, {1: "int key"}, object, "\ud800", {"nan": loads(b"[NaN]")}),
    ],
)
def test_dumps_stores_the_reference_value(value: Any) -> None:
    assert same_value(dumps(value), value)
    exact = isinstance(value, NonFinite) or value in ({1: "int key"}, "\ud800")
    if exact or not isinstance(value, (str, float, list, dict)):  # what orjson leaves to json
        assert dumps(value) == REFERENCE.encode(value)


def test_dumps_never_turns_non_finite_into_null() -> None:
    assert dumps([NonFinite("nan"), {"x": NonFinite("inf")}]) == '[NaN,{"x":Infinity}]'
    assert dumps(loads(b'{"a":[-Infinity]}')) == '{"a":[-Infinity]}'


def restored(stored: str | bytes, ids: Sequence[Any] = ("",)) -> dict[str, Any]:
    """A stored ``detail`` as the reader sees it: ``from_dict`` fills in the fields left out."""
    raw = load_record(ids, stored) if isinstance(stored, bytes) else json.loads(stored)
    extra = raw.pop("_extra", {})
    return {**TaskRecord.from_dict(raw).to_dict(), "_extra": extra}


def test_record_dict_reads_back_as_to_dict() -> None:
    by_task: dict[str, list[Event]] = defaultdict(list)
    for e in fixture_events():
        if e.task_id:
            by_task[e.task_id].append(e)
    records = [fold_task(tid, evs) for tid, evs in by_task.items()]
    base = records[0]
    records += [
        replace(base, name="n\u00e9", runtime_ms=float("nan"), args=(1, None), result={"r": [1.5]}),
        replace(base, canvases=({"a": 1},), root_id=5, names=("a", "b")),  # type: ignore[arg-type]  # an int on purpose
        replace(base, attempts=(Attempt(1, TaskState.LOST, lost_reason="x"), Attempt(2, TaskState.SUCCESS))),
        replace(base, attempts=(), name=None, retries=3, replaced_task_nesting=1, result=0),
        replace(base, attempts=(Attempt(1, TaskState.STARTED, redelivered=True),), args=[], kwargs={}),
    ]
    for record in records:
        if record.runtime_ms is None or record.runtime_ms == record.runtime_ms:
            expected = REFERENCE.encode({**record.to_dict(), "_extra": {}})
            assert REFERENCE.encode(restored(dumps(record_dict(record)))) == expected, record.id
        # The stored column; a computed non-finite runtime (a plain float: orjson would write
        # null for it) is json's text there.
        detail = task_row(record, [], "wf", 1.0, 2.0)[_DETAIL]
        ids = (record.id, record.root_id, record.parent_id, record.group_id)
        assert REFERENCE.encode(restored(detail, ids)) == REFERENCE.encode({**record.to_dict(), "_extra": {}})


def test_record_dict_leaves_out_what_from_dict_restores() -> None:
    record = TaskRecord(
        "t1", None, TaskState.SUCCESS, retries=0, result=0, attempts=(Attempt(1, TaskState.SUCCESS),)
    )
    stored = record_dict(record)
    # id, name and state always (older servers require them), falsy values that are not defaults kept
    assert stored == {
        "id": "t1",
        "name": None,
        "state": "SUCCESS",
        "result": 0,
        "attempts": [{"number": 1, "state": "SUCCESS"}],
    }
    assert "_extra" not in load_record(("t1",), task_row(record, [], "wf", 1.0, 2.0)[_DETAIL])
