"""The wire format (``core.wire``, batch version 1): a batch decodes to the events its rows and
objects stand for, exactly as ``decode_event`` has each full envelope; nothing else is a message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.wire import compact, expand

from stemtrace.core.events import MalformedEvent, decode_event
from stemtrace.core.wire import BATCH_VERSION, ROW_SHAPES, decode_batch, decode_items, encode_batch

SRC = {"host": "h", "pid": 7, "inst": "i1", "proc": "main", "node": "w1@h"}


def compact_events() -> list[dict[str, Any]]:
    return [
        {"type": "task.received", "ts": 10.0, "seq": 1, "task": {"id": "t1", "name": "a"}, "data": {}},
        {
            "type": "task.started",
            "ts": 10.5,
            "seq": 2,
            "proc": "thread",  # a pool thread shares the main process's emitter
            "task": {"id": "t1", "name": "a"},
            "data": {"retries": 0},
        },
        {"type": "worker.heartbeat", "ts": 11.0, "seq": 3, "node": "w2@h", "data": {"hostname": "w2@h"}},
    ]


def full(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if k not in ("seq", "proc", "node")}
    src = dict(SRC, seq=event["seq"])
    src.update({k: event[k] for k in ("proc", "node") if k in event})
    return {"v": 1, **out, "src": src}


def test_a_batch_decodes_like_full_envelopes() -> None:
    compact, errors = decode_batch(encode_batch(compact_events(), SRC))
    assert errors == []
    assert compact == [decode_event(full(e)) for e in compact_events()]
    assert [(e.src.seq, e.src.proc, e.src.node) for e in compact] == [
        (1, "main", "w1@h"),
        (2, "thread", "w1@h"),
        (3, "main", "w2@h"),
    ]
    assert {e.v for e in compact} == {1} and {e.src.inst for e in compact} == {"i1"}


def test_the_batch_states_the_process_once() -> None:
    body = json.loads(encode_batch(compact_events(), SRC))
    assert body["v"] == BATCH_VERSION and body["src"] == SRC
    assert all("src" not in e and "v" not in e for e in body["events"])


def test_compact_is_the_inverse_of_expand() -> None:
    envelopes = [full(e) for e in compact_events()]
    events, src, cols = compact(envelopes)
    assert src == SRC and events == compact_events() and cols == {}
    assert expand(json.loads(encode_batch(events, src))) == envelopes


def test_expand_gives_full_envelopes() -> None:
    events = compact_events()
    assert expand(json.loads(encode_batch(events, SRC))) == [full(e) for e in events]


@pytest.mark.parametrize(
    ("batch", "kind"),
    [
        ({"v": BATCH_VERSION + 1, "src": SRC, "events": []}, "newer_schema"),
        ({"v": 0, "src": SRC, "events": []}, "bad_version"),
        ({"v": 1, "src": SRC, "cols": [], "events": []}, "bad_batch"),
        ({"v": 1, "src": SRC, "cols": {"task.started": "retries"}, "events": []}, "bad_batch"),
        ({"v": 1, "src": SRC, "cols": {"task.started": ["retries", 1]}, "events": []}, "bad_batch"),
        ({"v": 1, "src": SRC, "cols": {"task.started": ["retries", "retries"]}, "events": []}, "bad_batch"),
        ({"v": "1", "src": SRC, "events": []}, "bad_version"),
        ({"v": 1, "src": SRC, "events": {}}, "bad_batch"),
        ({"v": 1, "src": "h", "events": []}, "bad_source"),
        # Nothing but a batch is a message: not an array of envelopes, not one envelope.
        ([{"v": 1, "type": "task.started", "ts": 1.0, "src": {**SRC, "seq": 1}}], "bad_batch"),
        (
            {"v": 1, "type": "task.started", "ts": 1.0, "src": {**SRC, "seq": 1}, "task": {"id": "t"}},
            "bad_batch",
        ),
        ({"v": 4, "src": SRC, "events": []}, "newer_schema"),  # the intermediate layouts are gone
    ],
)
def test_an_unusable_batch_is_one_malformed_report(batch: Any, kind: str) -> None:
    events, errors = decode_batch(json.dumps(batch))
    assert events == [] and [e.kind for e in errors] == [kind]


def test_a_broken_event_is_skipped_alone() -> None:
    good = compact_events()[0]
    items: list[Any] = [7, {**good, "seq": "x"}, {**good, "type": "nope"}, {**good, "seq": 9}]
    events, errors = decode_batch(json.dumps({"v": BATCH_VERSION, "src": SRC, "events": items}))
    assert [e.src.seq for e in events] == [9]
    assert [e.kind for e in errors] == ["not_an_object", "bad_source", "unknown_type"]


def test_a_batch_without_a_host_is_refused_per_event() -> None:
    events, errors = decode_batch(
        json.dumps({"v": BATCH_VERSION, "src": {"pid": 1, "inst": "i"}, "events": compact_events()})
    )
    assert events == [] and {e.kind for e in errors} == {"bad_source"}


_ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=3), st.just({})
)


@st.composite
def compact_items(draw: st.DrawFn) -> Any:
    """Items of a compact batch: mostly sound, with any field swapped for any value."""
    item: dict[str, Any] = {
        "type": draw(st.sampled_from(["task.started", "task.succeeded", "worker.heartbeat", "nope"])),
        "ts": draw(st.sampled_from([10.0, 11, 0, -1.0, True, -0.0, float("inf")])),
        "seq": draw(st.sampled_from([1, 2, 3, "4", None, False])),
        "task": draw(
            st.sampled_from(
                [
                    {"id": "t1", "name": "a"},
                    {"id": "t1", "name": 5},
                    {"id": "t1", "name": ""},
                    {"id": ""},
                    {"name": "a"},
                    {"id": 7},
                    None,
                    "t1",
                ]
            )
        ),
        "data": draw(st.sampled_from([{"retries": 0}, {}, None, [], "x"])),
    }
    for key in draw(st.lists(st.sampled_from([*item, "proc", "node"]), max_size=2)):
        item[key] = draw(_ANY)
    for key in draw(st.lists(st.sampled_from(list(item)), max_size=2)):
        item.pop(key, None)
    return draw(st.one_of(st.just(item), _ANY)) if draw(st.integers(0, 9)) == 0 else item


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(compact_items(), max_size=6),
    src=st.sampled_from([SRC, {**SRC, "node": None}, {"host": "h", "pid": 1, "inst": "i"}, {"pid": 1}]),
)
def test_compact_batches_decode_item_by_item_like_decode_event(items: list[Any], src: dict[str, Any]) -> None:
    """The compact path checks the batch's source once; what it yields or refuses must be
    exactly what decoding each item on its own against that source gives."""
    events, errors = decode_items({"v": BATCH_VERSION, "src": src, "events": items})
    expected: list[Any] = []
    for item in items:
        try:
            expected.append(decode_event(item, src))
        except MalformedEvent as exc:
            expected.append(exc.kind)
    got = iter(events)
    kinds = iter(errors)
    assert [next(got) if not isinstance(e, str) else next(kinds).kind for e in expected] == expected
    assert next(got, None) is None and next(kinds, None) is None


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"task": {"id": "t1", "name": 5}},
        {"task": {"id": "t1", "name": ""}},
        {"task": {"id": "t1"}},
        {"task": {"id": ""}},
        {"task": {"id": 7}},
        {"ts": 0.0},
        {"ts": float("nan")},
        {"ts": 3},
        {"seq": "4"},
        {"data": None},
        {"type": ["task.started"]},
        {"type": "worker.heartbeat"},
    ],
)
def test_a_sound_task_item_and_its_near_misses_decode_like_decode_event(change: dict[str, Any]) -> None:
    """The compact path checks the batch's source once; each near miss must come out (or be
    refused) exactly as ``decode_event`` has it."""
    item = {"type": "task.started", "ts": 10.0, "seq": 1, "task": {"id": "t1", "name": "a"}, "data": {}}
    item.update(change)
    events, errors = decode_items({"v": BATCH_VERSION, "src": SRC, "events": [item]})
    try:
        expected: Any = decode_event(item, SRC)
    except MalformedEvent as exc:
        assert [e.kind for e in errors] == [exc.kind] and events == []
    else:
        assert events == [expected] and errors == []


# -- rows ------------------------------------------------------------------------------------------
COLS = {"task.started": ["retries", "worker_pid"], "task.succeeded": ["retries", "runtime"]}
NS = 1_000_000_000  # a row's ts is in epoch nanoseconds


def rows_and_items() -> list[tuple[list[Any], dict[str, Any]]]:
    """Rows and the compact items they stand for."""
    task = {"id": "t1", "name": "proj.add"}
    return [
        (
            ["task.started", 10 * NS, 1, "t1", "proj.add", 0, 4321],
            {
                "type": "task.started",
                "ts": 10.0,
                "seq": 1,
                "task": task,
                "data": {"retries": 0, "worker_pid": 4321},
            },
        ),
        (
            ["task.succeeded", 10_500_000_000, 2, "t1", None, 0, 0.25, {"result": [4, None]}],
            {
                "type": "task.succeeded",
                "ts": 10.5,
                "seq": 2,
                "task": {"id": "t1", "name": None},
                "data": {"retries": 0, "runtime": 0.25, "result": [4, None]},
            },
        ),
    ]


def test_rows_decode_like_the_items_they_stand_for() -> None:
    rows, items = zip(*rows_and_items(), strict=True)
    mixed = [rows[0], compact_events()[2], rows[1]]
    events, errors = decode_batch(encode_batch(mixed, SRC, COLS))
    assert errors == []
    expected, _ = decode_batch(encode_batch([items[0], compact_events()[2], items[1]], SRC))
    assert events == expected
    assert [e.data for e in events] == [items[0]["data"], {"hostname": "w2@h"}, items[1]["data"]]
    assert [e.task_name for e in events] == ["proj.add", None, None]


def test_a_batch_states_its_row_fields_once() -> None:
    rows = [row for row, _ in rows_and_items()]
    body = json.loads(encode_batch(rows, SRC, COLS))
    assert body == {"v": BATCH_VERSION, "src": SRC, "cols": COLS, "events": rows}
    assert "cols" not in json.loads(encode_batch(compact_events(), SRC, {}))


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ([], "unknown_type"),
        (["task.nope", 10 * NS, 1, "t1", "a", 0, 1], "unknown_type"),
        (["worker.heartbeat", 10 * NS, 1, "t1", "a", 0, 1], "unknown_type"),  # rows are task events only
        (["task.received", 10 * NS, 1, "t1", "a"], "bad_row"),  # no "cols" for its type
        (["task.started", 10 * NS, 1, "t1", "a", 0], "bad_row"),  # a value short
        (["task.started", 10 * NS, 1, "t1", "a", 0, 1, [5]], "bad_row"),  # the extra fields not an object
        (["task.started", 10 * NS, 1, "t1", "a", 0, 1, {}, {}], "bad_row"),  # too long
        (["task.started", 10 * NS, "1", "t1", "a", 0, 1], "bad_source"),
        (["task.started", 0, 1, "t1", "a", 0, 1], "bad_timestamp"),
        (["task.started", 10.0, 1, "t1", "a", 0, 1], "bad_timestamp"),  # seconds
        (["task.started", "10", 1, "t1", "a", 0, 1], "bad_timestamp"),
        (["task.started", 10**400, 1, "t1", "a", 0, 1], "bad_timestamp"),  # no float holds it
        (["task.started", 10 * NS, 1, "", "a", 0, 1], "bad_task_id"),
        (["task.started", 10 * NS, 1, 7, "a", 0, 1], "bad_task_id"),
    ],
)
def test_a_broken_row_is_skipped_alone(row: list[Any], kind: str) -> None:
    good = rows_and_items()[0][0]
    events, errors = decode_items({"v": BATCH_VERSION, "src": SRC, "cols": COLS, "events": [row, good]})
    assert [e.kind for e in errors] == [kind]
    assert [e.src.seq for e in events] == [1]


@pytest.mark.parametrize(
    "change",
    [
        {1: 3},
        {1: float("inf")},
        {1: True},
        {2: None},
        {2: 2.0},
        {3: None},
        {4: 5},
        {4: ""},
        {5: None},
        {6: "x"},
    ],
)
def test_a_row_and_its_near_misses_decode_like_the_item_they_stand_for(change: dict[int, Any]) -> None:
    row, _ = rows_and_items()[0]
    row = list(row)
    for index, value in change.items():
        row[index] = value
    item = {
        "type": row[0],
        "ts": row[1] / NS if type(row[1]) is int else row[1],
        "seq": row[2],
        "task": {"id": row[3], "name": row[4]},
        "data": {"retries": row[5], "worker_pid": row[6]},
    }
    got = decode_items({"v": BATCH_VERSION, "src": SRC, "cols": COLS, "events": [row]})
    want = decode_items({"v": BATCH_VERSION, "src": SRC, "events": [item]})
    assert (got[0], [e.kind for e in got[1]]) == (want[0], [e.kind for e in want[1]])


def test_rows_under_an_unusable_source_are_refused_as_items_are() -> None:
    rows = [row for row, _ in rows_and_items()]
    events, errors = decode_items({"v": BATCH_VERSION, "src": {"pid": 1}, "cols": COLS, "events": rows})
    assert events == [] and [e.kind for e in errors] == ["bad_source", "bad_source"]


def test_expand_gives_full_envelopes_for_rows() -> None:
    pairs = rows_and_items()
    broken = ["task.started", 10 * NS]
    body = json.loads(encode_batch([pairs[0][0], broken, pairs[1][0]], SRC, COLS))
    assert expand(body) == [full(pairs[0][1]), broken, full(pairs[1][1])]


def test_compact_makes_rows_of_the_events_its_cols_name() -> None:
    pairs = rows_and_items()
    envelopes = [full(item) for _, item in pairs] + [full(e) for e in compact_events()]
    events, src, cols = compact(envelopes, {**COLS, "task.received": ["retries"]})
    assert src == SRC and cols == COLS  # the received event has no "retries": it stays an object
    assert events == [row for row, _ in pairs] + compact_events()
    assert expand(json.loads(encode_batch(events, src, cols))) == envelopes


def test_the_librarys_rows_are_the_table_s_shapes() -> None:
    """The capture path fills its hot events in ``ROW_SHAPES`` order (``capture.fields``), and a
    batch of such rows decodes to those fields by name."""
    from stemtrace.capture.fields import DATA_FIELDS

    assert DATA_FIELDS == ROW_SHAPES
    for etype, names in ROW_SHAPES.items():
        row = [etype, 10 * NS, 1, "t1", "n", *range(len(names))]
        cols = {t: list(n) for t, n in ROW_SHAPES.items()}  # as JSON gives them
        (event,), errors = decode_items({"v": BATCH_VERSION, "src": SRC, "cols": cols, "events": [row]})
        assert errors == [] and dict(event.data) == dict(zip(names, range(len(names)), strict=True))
