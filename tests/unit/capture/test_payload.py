"""Captured values: bounded, redacted, JSON-able, never raising."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stemtrace.capture.config import DEFAULT_REDACT_KEYS, CaptureConfig
from stemtrace.capture.finish import Finisher
from stemtrace.capture.payload import (
    _Converter,
    capture_sized,
    capture_text,
    capture_value,
    encoded_size,
    shallow,
)
from stemtrace.capture.redact import Redactor
from stemtrace.core.events import (
    REDACTED,
    REPR_KEY,
    TASK_PUBLISHED,
    TASK_RECEIVED,
    TASK_SUCCEEDED,
    TRUNCATED_KEY,
)

R = Redactor(DEFAULT_REDACT_KEYS)


def _apply(finisher: Finisher, event: dict[str, Any], raw: dict[str, Any]) -> None:
    """Add the fields ``finisher`` captures from ``raw`` (live values by field name) to ``event``."""
    event["data"].update(finisher._captured((event.get("task") or {}).get("name"), raw))


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_json_values_pass_through_unchanged() -> None:
    value = {"a": [1, 2.5, None, True, "x"], "b": {"c": "d"}}
    assert capture_value(value, R, 4096) == value


def test_huge_string_keeps_its_beginning_and_small_neighbours_survive() -> None:
    blob = "abc" + "x" * 1_000_000
    out = capture_value({"user_id": 42, "blob": blob}, R, 4096)
    assert out["user_id"] == 42
    marker = out["blob"]
    assert marker[TRUNCATED_KEY] is True
    assert marker["size"] == len(blob)
    assert marker["preview"].startswith("abcxxx")
    assert encoded_size(out) <= 4096


def test_many_medium_strings_are_shrunk_leaf_by_leaf() -> None:
    value = {f"k{i}": "y" * 1000 for i in range(30)} | {"user_id": 7}
    out = capture_value(value, R, 4096)
    assert out["user_id"] == 7
    assert encoded_size(out) <= 4096
    assert all(out[f"k{i}"][TRUNCATED_KEY] for i in range(30))


def test_non_json_values_fall_back_to_a_bounded_repr() -> None:
    out = capture_value(
        {"set": {1, 2}, "bytes": b"\xff\xfe", "obj": Opaque(), "bad": "\udcff", "huge": Opaque()}, R, 4096
    )
    assert out["set"][REPR_KEY] == "{1, 2}"
    assert out["set"]["type"] == "builtins.set"
    assert out["bytes"]["type"] == "builtins.bytes"
    assert out["obj"][REPR_KEY] == "Opaque()"
    assert out["bad"]["type"] == "builtins.str"
    json.dumps(out)  # plain JSON now


def test_a_raising_repr_does_not_raise() -> None:
    out = capture_value([Hostile(), {Hostile()}], R, 4096)
    assert out[0]["type"].endswith("Hostile") and "Hostile" in out[0][REPR_KEY]
    assert out[1]["type"] == "builtins.set"


def test_long_list_and_deep_nesting_are_bounded() -> None:
    deep: Any = []
    cursor = deep
    for _ in range(100):
        cursor.append([])
        cursor = cursor[0]
    out = capture_value({"many": list(range(5000)), "deep": deep}, R, 100_000)
    assert len(out["many"]) == 201 and out["many"][-1][TRUNCATED_KEY]
    assert REPR_KEY in json.dumps(out["deep"])


def test_sensitive_keys_are_redacted_at_any_depth_and_marked() -> None:
    value = {"user": {"Password": "p", "profile": {"api_key": "k", "X-Auth-Token": "t"}}, "name": "ann"}
    out = capture_value(value, R, 4096)
    assert out["user"]["Password"] == REDACTED
    assert out["user"]["profile"]["api_key"] == REDACTED
    assert out["user"]["profile"]["X-Auth-Token"] == REDACTED
    assert out["name"] == "ann"


def test_extra_keys_patterns_positional_args_and_hook() -> None:
    def hook(task: str | None, field: str, value: Any) -> Any:
        return "HOOKED" if field == "result" and task == "t.login" else value

    redactor = Redactor(
        (*DEFAULT_REDACT_KEYS, "pin"), [r"\b\d{4}-\d{4}-\d{4}-\d{4}\b"], {"t.login": [1]}, hook
    )
    cfg = CaptureConfig()
    finisher = Finisher(cfg, redactor)
    event: dict[str, Any] = {"task": {"id": "1", "name": "t.login"}, "data": {}}
    _apply(finisher, event, {"args": ["ann", "hunter2", "card 4111-1111-1111-1111"], "kwargs": {"pin": 1234}})
    assert event["data"]["args"] == ["ann", REDACTED, f"card {REDACTED}"]
    assert event["data"]["kwargs"] == {"pin": REDACTED}
    event = {"task": {"id": "1", "name": "t.login"}, "data": {}}
    _apply(finisher, event, {"result": {"ok": True}})
    assert event["data"]["result"] == "HOOKED"


def test_exception_messages_follow_the_same_rules() -> None:
    redactor = Redactor(DEFAULT_REDACT_KEYS, [r"sk_live_\w+"])
    text = "login failed: password=hunter2, {'token': 'abc'} key sk_live_123"
    out = capture_text(text, redactor, 4096)
    assert "hunter2" not in out and "abc" not in out and "sk_live_123" not in out
    assert out.count(REDACTED) == 3
    assert out.startswith("login failed: password=")


def test_tracebacks_keep_their_head_and_their_tail() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        + "".join(f"frame {i}\n" for i in range(5000))
        + "ValueError: boom"
    )
    out = capture_text(tb, R, 1000, head_tail=True)
    assert out[TRUNCATED_KEY] is True and out["size"] == len(tb)
    preview = out["preview"]
    assert preview.startswith("Traceback (most recent call last):\nframe 0\n")
    assert preview.endswith("frame 4999\nValueError: boom")
    assert "bytes cut" in preview and len(preview) <= 1000
    # Cut on line boundaries: every line kept is a whole line of the original.
    kept = [line for line in preview.splitlines() if "bytes cut" not in line]
    assert all(line in tb.splitlines() for line in kept)


def test_messages_keep_their_beginning() -> None:
    message = "connection refused by db.internal: " + "x" * 10_000
    out = capture_text(message, R, 4096)
    assert out[TRUNCATED_KEY] is True and out["size"] == len(message)
    assert out["preview"].startswith("connection refused by db.internal: ")


def _django_traceback(frames: int) -> str:
    lines = ["Traceback (most recent call last):"]
    for i in range(frames):
        path = f"/srv/app/.venv/lib/python3.11/site-packages/django/db/backends/utils_{i}.py"
        lines.append(f'  File "{path}", line {100 + i}, in _execute_with_wrappers')
        lines.append("    return self.cursor.execute(sql, params)")
        lines.append("           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^")
    lines.append("django.db.utils.OperationalError: could not connect to server: Connection refused")
    return "\n".join(lines)


def test_a_long_message_keeps_the_message_and_the_traceback_each_cut_once() -> None:
    """The >4 KB message case: one marker per field, the original size in it, the traceback
    whole (a 60-frame Django stack fits the defaults)."""
    tb = _django_traceback(60)
    assert 12_000 <= len(tb) <= 16_384
    message = "invalid input: " + "y" * 9000
    finisher = Finisher(CaptureConfig(), R)
    data = finisher._captured("t", {"exception": message, "traceback": tb})
    assert data["traceback"] == tb
    exc = data["exception"]
    assert exc[TRUNCATED_KEY] is True and exc["size"] == len(message)
    assert isinstance(exc["preview"], str) and exc["preview"].startswith("invalid input: ")


def test_over_the_event_budget_values_give_way_before_the_traceback() -> None:
    tb = _django_traceback(60)
    cfg = CaptureConfig(max_event_bytes=17_000)
    data = Finisher(cfg, R)._captured(
        "t", {"args": ["z" * 4000], "kwargs": {}, "exception": "boom " * 400, "traceback": tb}
    )
    assert data["traceback"] == tb  # args and the message shrank instead
    assert sum(encoded_size(v) for v in data.values()) <= 17_000
    assert data["args"][TRUNCATED_KEY] is True and data["args"]["size"] > 4000
    assert TRUNCATED_KEY not in data["args"]["preview"]  # one marker, not a marker in a marker


def test_a_tight_budget_cuts_the_traceback_once_from_the_original() -> None:
    tb = _django_traceback(60)
    cfg = CaptureConfig(max_event_bytes=3000)
    data = Finisher(cfg, R)._captured("t", {"exception": "E" * 6000, "traceback": tb})
    for key, original in (("exception", 6000), ("traceback", len(tb))):
        marker = data[key]
        assert marker[TRUNCATED_KEY] is True and marker["size"] == original
        assert isinstance(marker["preview"], str) and TRUNCATED_KEY not in marker["preview"]
    assert data["traceback"]["preview"].endswith("Connection refused")
    assert sum(encoded_size(v) for v in data.values()) <= 3000


def test_celery_argsrepr_is_honoured_only_when_the_user_set_it() -> None:
    finisher = Finisher(CaptureConfig(), R)
    event: dict[str, Any] = {"task": {"id": "1", "name": "t"}, "data": {}}
    _apply(finisher, event, {"args": [1, 2], "kwargs": {}, "argsrepr": "(1, 2)", "kwargsrepr": "{}"})
    assert event["data"]["args"] == [1, 2] and "args_repr" not in event["data"]
    event = {"task": {"id": "1", "name": "t"}, "data": {}}
    _apply(finisher, event, {"args": ["secret"], "kwargs": {}, "argsrepr": "(<hidden>,)", "kwargsrepr": "{}"})
    assert event["data"]["args_repr"] == "(<hidden>,)" and "args" not in event["data"]


def test_event_budget_shrinks_the_largest_field_first() -> None:
    cfg = CaptureConfig(max_field_bytes=10_000, max_event_bytes=12_000)
    finisher = Finisher(cfg, R)
    event: dict[str, Any] = {"task": {"id": "1", "name": "t"}, "data": {}}
    _apply(finisher, event, {"args": ["a" * 9000], "kwargs": {"user_id": 5, "note": "b" * 6000}})
    data = event["data"]
    assert data["args"][TRUNCATED_KEY] is True
    assert data["kwargs"]["user_id"] == 5
    assert encoded_size(data["args"]) + encoded_size(data["kwargs"]) <= 12_000


def test_capture_switches() -> None:
    finisher = Finisher(CaptureConfig(capture_args=False, capture_result=False, capture_traceback=False), R)
    event: dict[str, Any] = {"task": {"id": "1", "name": "t"}, "data": {}}
    _apply(finisher, event, {"args": [1], "kwargs": {}, "result": 3, "exception": "e", "traceback": "tb"})
    assert event["data"] == {"exception": "e"}


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**64),  # about the 64-bit bound of the shallow path
    st.integers(min_value=-(2**64), max_value=-(2**62)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=70),
)
_KEYS = st.one_of(
    st.sampled_from(["user_id", "password", "api-key", "note", "X-Auth-Token"]), st.text(max_size=70)
)
_SHALLOW_CANDIDATES = st.one_of(
    st.lists(_SCALARS, max_size=20),
    st.lists(_SCALARS, max_size=20).map(tuple),
    st.dictionaries(_KEYS, _SCALARS, max_size=20),
    st.dictionaries(st.integers(), _SCALARS, max_size=3),
    st.lists(st.lists(_SCALARS, max_size=2), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(_SHALLOW_CANDIDATES, st.sampled_from([64, 100, 4096]))
def test_the_shallow_path_captures_what_the_converter_does(value: Any, max_field_bytes: int) -> None:
    """The shortcut for short plain containers must never change a captured value or its size."""
    fast = shallow(value, R)
    if fast is not None:
        assert fast == _Converter(R, max_field_bytes).convert(value)
    captured, size = capture_sized(value, R, max_field_bytes)
    converted = _Converter(R, max_field_bytes).convert(value)
    if encoded_size(converted) <= max_field_bytes:
        assert json.dumps(captured, sort_keys=True) == json.dumps(converted, sort_keys=True)
    assert size == encoded_size(captured)


def test_the_shallow_path_leaves_patterns_and_long_strings_to_the_converter() -> None:
    assert shallow(["x" * 65], R) is None and shallow(["é"], R) is None and shallow([float("nan")], R) is None
    assert shallow([[1]], R) is None and shallow({1: 2}, R) is None and shallow(list(range(17)), R) is None
    assert shallow({"password": "p", "id": 3}, R) == {"password": REDACTED, "id": 3}
    masked = Redactor(DEFAULT_REDACT_KEYS, [r"\d{4}-\d{4}"])
    assert capture_sized(["card 1234-5678"], masked, 4096)[0] == [f"card {REDACTED}"]


def test_a_row_carries_the_captured_values_every_such_event_has_as_columns() -> None:
    """Arguments and results as row values when captured; what a user's argsrepr replaces is
    ``None`` there, the repr in the row's object; with capture off, no such columns."""
    finisher = Finisher(CaptureConfig(), R)
    assert finisher.columns(TASK_PUBLISHED) == ("args", "kwargs")
    assert finisher.columns(TASK_SUCCEEDED) == ("result",)
    assert finisher.columns(TASK_RECEIVED) == ()
    hidden = ((1,), {"password": "x"}, None, "(<hidden>)", None)
    assert finisher.tail(TASK_PUBLISHED, "proj.add", hidden) == (
        None,
        {"password": "[redacted]"},
        {"args_repr": "(<hidden>)"},
    )
    assert finisher.tail(TASK_SUCCEEDED, "proj.add", ({"token": "t", "n": 1},)) == (
        {"token": "[redacted]", "n": 1},
    )
    off = Finisher(CaptureConfig(capture_args=False, capture_result=False), R)
    assert off.columns(TASK_PUBLISHED) == off.columns(TASK_SUCCEEDED) == ()
    assert off.tail(TASK_SUCCEEDED, "proj.add", (5,)) == ()
    assert off.tail(TASK_PUBLISHED, "proj.add", ((1,), None, None, "(1,)", "{}")) == ()
