"""Validation at the ingest edge: what is repaired, what is rejected, what passes untouched."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from server_events import EventFactory

from stemtrace.core.events import Event
from stemtrace.core.events import decode_event as core_decode_event
from stemtrace.server.jsonfast import loads
from stemtrace.server.validate import (
    FUTURE_S,
    ID_MAX,
    INVALID_KEY,
    MAX_DEPTH,
    MIN_TS,
    TS_ORIGINAL_KEY,
    Rejected,
    check,
    clean_text,
)

NOW = 1_790_100_000.0


def raw(**data: Any) -> dict[str, Any]:
    return EventFactory().raw("task.published", "t-1", "proj.add", **data)


def decode_event(envelope: dict[str, Any]) -> Event:
    """As ingest decodes: from the JSON text, through the server's parser."""
    return core_decode_event(loads(json.dumps(envelope)))


def test_a_clean_event_passes_as_the_same_object() -> None:
    event = decode_event(raw(queue="celery", args=[1, "two"], kwargs={"x": 1.5}, retries=0))
    checked, repaired = check(event, NOW)
    assert checked is event and repaired == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("queue", ["a", "b"]),
        ("queue", {"name": "celery"}),
        ("parent_id", ["p"]),
        ("root_id", {"id": "r"}),
        ("group_id", 12),
        ("root_id", "r" * (ID_MAX + 1)),
        ("retries", "3"),
        ("retries", 2**63),
        ("retries", -1),
        ("runtime", "fast"),
        ("eta", 12345),
        ("exception_type", ["ValueError"]),
    ],
)
def test_a_typed_field_of_the_wrong_type_is_removed_and_its_preview_kept(field: str, value: Any) -> None:
    checked, repaired = check(decode_event(raw(**{field: value})), NOW)
    assert field not in checked.data
    assert field in checked.data[INVALID_KEY]
    assert "field_removed" in repaired
    orjson.dumps(checked.data)  # storable as it is


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "\ud800alone", "x" * 70_000, 2**64 + 5, -(2**70), math.nan, math.inf, -math.inf],
)
def test_any_value_in_data_is_made_storable(value: Any) -> None:
    checked, repaired = check(decode_event(raw(args=[value], kwargs={"k": {"deep": value}})), NOW)
    text = orjson.dumps(checked.data)  # raises on a surrogate, a 65-bit int or NaN
    assert b"\\u0000" not in text and len(text) < 150_000
    assert "data_cleaned" in repaired


def test_deep_nesting_is_cut_with_a_marker() -> None:
    envelope = json.dumps(raw(args="DEEP")).replace('"DEEP"', "[" * 200 + '"leaf"' + "]" * 200)
    checked, _ = check(core_decode_event(loads(envelope)), NOW)
    depth, node = 0, checked.data["args"]
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert depth < MAX_DEPTH and node["__stemtrace_truncated__"] is True


@pytest.mark.parametrize(
    ("ts", "expected"), [(1.0, MIN_TS), (253_402_300_800.0 * 2, NOW + FUTURE_S), (1e300, NOW + FUTURE_S)]
)
def test_timestamps_are_clamped_and_the_original_kept(ts: float, expected: float) -> None:
    event = decode_event({**raw(), "ts": ts})
    checked, repaired = check(event, NOW)
    assert checked.ts == expected
    assert checked.data[TS_ORIGINAL_KEY] == ts
    assert repaired == ("ts_clamped",)


@pytest.mark.parametrize(
    ("task_id", "reason"),
    [("x" * 1_000_000, "bad_id"), ("a\x00b", "bad_id"), ("\udc80", "bad_id")],
)
def test_an_unusable_task_id_is_rejected_not_rewritten(task_id: str, reason: str) -> None:
    event = decode_event({**raw(), "task": {"id": task_id, "name": "n"}})
    with pytest.raises(Rejected) as err:
        check(event, NOW)
    assert err.value.reason == reason


def test_a_sequence_number_past_64_bits_is_rejected() -> None:
    event = decode_event({**raw(), "src": {**raw()["src"], "seq": 2**63}})
    with pytest.raises(Rejected) as err:
        check(event, NOW)
    assert err.value.reason == "bad_seq"


def test_library_health_counters_are_numbers_or_gone() -> None:
    f = EventFactory()
    event = decode_event(
        f.raw("library.health", None, sent="lots", dropped=3.0, errors=[1], buffer_depth=7, inst="x")
    )
    checked, _ = check(event, NOW)
    assert checked.data["dropped"] == 3 and type(checked.data["dropped"]) is int
    assert checked.data["buffer_depth"] == 7
    assert {"sent", "errors", "inst"} <= set(checked.data[INVALID_KEY])
    assert "sent" not in checked.data and "inst" not in checked.data


def test_source_text_is_cleaned_and_an_out_of_range_pid_zeroed() -> None:
    base = raw()
    event = decode_event({**base, "src": {**base["src"], "host": "h\x00st", "pid": 2**40, "node": "n\ud800"}})
    checked, _ = check(event, NOW)
    assert checked.src.host == "h\ufffdst" and checked.src.node == "n\ufffd" and checked.src.pid == 0


def test_a_canvas_linking_an_unusable_id_is_removed() -> None:
    canvas = {"chain": [{"type": "task", "id": "g" * 5000, "name": "n"}]}
    checked, _ = check(decode_event(raw(canvas=canvas)), NOW)
    assert "canvas" not in checked.data and "canvas" in checked.data[INVALID_KEY]


def test_clean_text() -> None:
    assert clean_text("ok") == "ok"
    assert clean_text("a\x00\ud83d") == "a\ufffd\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a pair is the character it stands for
    assert len(clean_text("y" * 10, 5)) == 5
