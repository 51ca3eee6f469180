"""Validation at the ingest edge: every decoded event made to fit what the store and API expect.

The decoder (``core.events``) checks an event's shape; it cannot know what a database column
or an API schema will choke on. Anything that reached the store once stayed there and broke
every later read (a text ``sent`` counter made ``/api/health`` answer 500, a timestamp after
year 9999 the task list) or every later write (a 1 MB task id, a NUL byte, a lone surrogate,
an integer past 64 bits: the batch could never commit and ingest stalled behind it).

So, before planning, each event is checked here:

- its *identity* (task id, ``src.inst``, ``src.seq``) must be storable as it is: rewriting an
  id would merge or split tasks, so an event whose identity is unusable is rejected
  (:class:`Rejected`) and ingest quarantines it;
- everything else is *repaired*: text loses NUL bytes and lone surrogates (each becomes
  U+FFFD) and is capped, integers past 64 bits and non-finite floats become text, nesting is
  cut at :data:`MAX_DEPTH`, the timestamp is clamped into a sane window (the original kept in
  ``data["__stemtrace_ts__"]``), and a field that the fold reads into a column but holds the
  wrong type is removed (its preview kept in ``data["__stemtrace_invalid__"]``).

An event that needs none of this (nearly all) costs one orjson encoding of its ``data``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import orjson

from stemtrace.core.events import LIBRARY_HEALTH, TRUNCATED_KEY, Event
from stemtrace.core.identity import linked_ids

ID_MAX: Final = 255  # characters of a task id, inst or linked id (PostgreSQL indexes them)
NAME_MAX: Final = 255  # task name, worker, queue, exception type: indexed columns
TEXT_MAX: Final = 65_536  # any other string
ITEMS_MAX: Final = 10_000  # items of one list or object
MAX_DEPTH: Final = 64  # nesting of ``data``
FAST_MAX_BYTES: Final = 65_536  # ``data`` texts longer than this are walked (the library sends < 32 KiB)
INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1
MIN_TS: Final = 946_684_800.0  # 2000-01-01: nothing Celery sent was earlier
FUTURE_S: Final = 86_400.0  # clock skew allowed ahead of the server's own clock
TS_ORIGINAL_KEY: Final = "__stemtrace_ts__"
INVALID_KEY: Final = "__stemtrace_invalid__"
PREVIEW_MAX: Final = 200

_REPLACEMENT = "\ufffd"


class Rejected(ValueError):
    """An event that cannot be stored without changing what it is; ``reason`` is a stable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def clean_text(value: str, cap: int = TEXT_MAX) -> str:
    """``value`` without NUL bytes or lone surrogates (each becomes U+FFFD), at most ``cap`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16: a high and low surrogate side by side become the one character they
        # stand for, and each lone one becomes U+FFFD.
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if len(value) > cap:
        value = value[: cap - 1] + "…"
    return value


def preview(value: Any, cap: int = PREVIEW_MAX) -> str:
    """A short, storable, ASCII description of any decoded value (never recursing deeply)."""
    try:
        text = orjson.dumps(value, default=repr).decode()
    except (TypeError, orjson.JSONEncodeError, RecursionError):
        text = _shallow(value, cap)
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return clean_text(text, cap)


def _shallow(value: Any, cap: int) -> str:
    if isinstance(value, str):
        return repr(value[:cap])
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(repr(str(k)[:40]) for k in list(value)[:10]) + "}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**cap:
        return f"<integer of {value.bit_length()} bits>"
    return repr(value)[:cap]


def clean_value(value: Any, depth: int = 0) -> Any:
    """Any decoded JSON value made storable and readable back (see the module docstring)."""
    kind = type(value)
    if kind is str:
        return clean_text(value)
    if value is None or kind is bool:
        return value
    if kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        return int(value) if -INT64_MAX - 1 <= value <= INT64_MAX else str(value)[:TEXT_MAX]
    if kind is float or isinstance(value, float):
        return float(value) if math.isfinite(value) else str(float(value))
    if depth >= MAX_DEPTH:
        return {TRUNCATED_KEY: True, "preview": preview(value), "reason": "nested too deeply"}
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {clean_text(str(k), NAME_MAX): clean_value(v, depth + 1) for k, v in items[:ITEMS_MAX]}
        if len(items) > ITEMS_MAX:
            out[TRUNCATED_KEY] = True
        return out
    if isinstance(value, (list, tuple)):
        kept = [clean_value(v, depth + 1) for v in value[:ITEMS_MAX]]
        if len(value) > ITEMS_MAX:
            kept.append({TRUNCATED_KEY: True, "size": len(value)})
        return kept
    return clean_text(repr(value))  # not a JSON type: only a foreign decoder would produce it


def _data_is_clean(data: Mapping[str, Any]) -> bool:
    """True when ``data`` needs no repair: orjson encodes it (no lone surrogates, no integers
    past 64 bits, no NaN, nesting under 255), without NUL bytes, deep nesting or excess size.
    Item counts are not checked here: a list of 10,000 items already exceeds the byte cap.
    (An integer in ``[2**63, 2**64)`` passes: in ``data`` it is only JSON text; the fields read
    into columns are checked by :data:`FIELDS`.)"""
    try:
        # Non-finite numbers arrive as ``jsonfast.NonFinite``, a float subclass: passed
        # through, orjson refuses it (it would write ``null`` for a plain NaN).
        text = orjson.dumps(data, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return (
        len(text) <= FAST_MAX_BYTES
        and b"\\u0000" not in text
        and (len(text) < 2 * MAX_DEPTH or _shallow_enough(text))
    )


def _shallow_enough(text: bytes) -> bool:
    """Nesting under :data:`MAX_DEPTH` (brackets counted outside strings only when any run deep)."""
    if text.count(b"[") + text.count(b"{") < MAX_DEPTH:
        return True
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest < MAX_DEPTH


# Fields the fold reads into columns or typed record fields, and what they must be.
_ID, _NAME, _SHORT, _COUNT, _DURATION, _NAMES, _NUMBERS, _MAPPING = range(8)
FIELDS: Final[dict[str, int]] = {
    "parent_id": _ID,
    "root_id": _ID,
    "group_id": _ID,
    "publisher_task_id": _ID,
    "queue": _NAME,
    "routing_key": _NAME,
    "exchange": _NAME,
    "hostname": _NAME,
    "worker": _NAME,
    "pool": _NAME,
    "exception_type": _NAME,
    "state": _NAME,
    "origin": _NAME,
    "eta": _SHORT,
    "expires": _SHORT,
    "retry_eta": _SHORT,
    "retries": _COUNT,
    "replaced_task_nesting": _COUNT,
    "group_index": _COUNT,
    "concurrency": _COUNT,
    "processed": _COUNT,
    "pid": _COUNT,
    "runtime": _DURATION,
    "interval": _DURATION,
    "queues": _NAMES,
    "registered": _NAMES,
    "active": _NAMES,
    "loadavg": _NUMBERS,
    "versions": _MAPPING,
    "canvas": _MAPPING,
}
# library.health counters: the API sums them, Prometheus exports them.
HEALTH_COUNTERS: Final = frozenset({"sent", "dropped", "errors", "buffer_depth", "buffer_size"})
# Keys of a library.health row's own columns, which its stored detail must not shadow.
_HEALTH_RESERVED: Final = frozenset({"inst", "host", "pid", "seq", "ts"})


_TEXT_CAPS: Final = {_ID: ID_MAX, _NAME: NAME_MAX, _SHORT: 64}


def _fits(rule: int, value: Any) -> bool:
    if value is None:
        return True
    cap = _TEXT_CAPS.get(rule)
    if cap is not None:
        return type(value) is str and len(value) <= cap
    if rule == _COUNT:
        return type(value) is int and 0 <= value <= INT32_MAX
    if rule == _DURATION:
        return type(value) in (int, float) and math.isfinite(value) and 0 <= value < 1e9
    if rule == _NAMES:
        return isinstance(value, list) and all(type(v) is str and len(v) <= NAME_MAX for v in value)
    if rule == _NUMBERS:
        return isinstance(value, list) and all(type(v) in (int, float) and math.isfinite(v) for v in value)
    return isinstance(value, Mapping)


def _all_fit(data: Mapping[str, Any]) -> bool:
    # A plain loop: this runs for every event, and all(<generator>) costs twice as much.
    for key in data.keys() & FIELDS.keys():  # noqa: SIM110
        if not _fits(FIELDS[key], data[key]):
            return False
    return True


def _fix_fields(data: dict[str, Any], kind: str) -> bool:
    """Remove the typed fields ``data`` holds with the wrong type; True when any was removed."""
    invalid: dict[str, str] = {}
    for key in data.keys() & FIELDS.keys():
        value = data[key]
        if not _fits(FIELDS[key], value):
            invalid[key] = preview(value)
            del data[key]
    if kind == LIBRARY_HEALTH:
        for key in data.keys() & _HEALTH_RESERVED:
            invalid[key] = preview(data.pop(key))
        for key in data.keys() & HEALTH_COUNTERS:
            value = data[key]
            if type(value) is float and math.isfinite(value) and 0 <= value <= INT64_MAX:
                data[key] = int(value)
            elif type(value) is not int or not 0 <= value <= INT64_MAX:
                invalid[key] = preview(data.pop(key))
    if invalid:
        previous = data.get(INVALID_KEY)
        data[INVALID_KEY] = {**(previous if isinstance(previous, dict) else {}), **invalid}
    return bool(invalid)


def _identity(value: Any, what: str) -> str:
    if type(value) is not str or not value:
        raise Rejected("bad_id", f"{what} must be a non-empty string, got {type(value).__name__}")
    if len(value) > ID_MAX:
        raise Rejected("bad_id", f"{what} of {len(value)} characters (at most {ID_MAX})")
    if clean_text(value, ID_MAX) != value:
        raise Rejected("bad_id", f"{what} holds a NUL byte or a lone surrogate: {preview(value, 80)}")
    return value


def check(event: Event, now: float) -> tuple[Event, tuple[str, ...]]:
    """``event`` made storable, and what was repaired (labels); raises :class:`Rejected`.

    ``now`` is the server's clock: timestamps more than :data:`FUTURE_S` ahead are clamped.
    """
    src = event.src
    task_id = event.task_id
    # Ids are nearly always short ASCII (UUIDs): no NUL, no surrogate, checked without encoding.
    if task_id is not None and not (
        type(task_id) is str and 0 < len(task_id) <= ID_MAX and task_id.isascii() and "\x00" not in task_id
    ):
        _identity(task_id, "task id")
    if src.inst not in _CLEAN:
        _identity(src.inst, "src.inst")
        _remember(src.inst)
    seq = src.seq
    if type(seq) is not int or not 0 <= seq <= INT64_MAX:
        raise Rejected("bad_seq", f"src.seq must be an integer in [0, 2**63), got {preview(seq, 60)}")
    repaired: list[str] = []
    data = event.data
    if type(data) is not dict or not _data_is_clean(data):
        cleaned = clean_value(data if isinstance(data, Mapping) else {})
        if not isinstance(cleaned, dict):
            cleaned = {}
        if cleaned != data:
            data = cleaned
            repaired.append("data_cleaned")
    if event.type == LIBRARY_HEALTH or not _all_fit(data):
        fixed = dict(data)
        if _fix_fields(fixed, event.type):
            data = fixed
            repaired.append("field_removed")
    ts = event.ts
    high = now + FUTURE_S
    if not MIN_TS <= ts <= high:
        data = {**data, TS_ORIGINAL_KEY: ts if math.isfinite(ts) else str(ts)}
        ts = MIN_TS if ts < MIN_TS or not math.isfinite(ts) else high
        repaired.append("ts_clamped")
    host, node, proc, name, pid = src.host, src.node, src.proc, event.task_name, src.pid
    if not (
        host in _CLEAN
        and proc in _CLEAN
        and (node is None or node in _CLEAN)
        and (name is None or name in _CLEAN)
    ):
        texts = (host, node, proc, name)
        if all(t is None or (type(t) is str and clean_text(t, NAME_MAX) == t) for t in texts):
            for t in texts:
                _remember(t)
        else:
            host = clean_text(str(host), NAME_MAX) or "?"
            node = clean_text(node, NAME_MAX) if type(node) is str else None
            proc = clean_text(str(proc), NAME_MAX)
            name = clean_text(name, NAME_MAX) if type(name) is str else None
            repaired.append("text_cleaned")
    if type(pid) is not int or not 0 <= pid <= INT32_MAX:
        pid = 0
        repaired.append("field_removed")
    if repaired:
        event = replace(
            event,
            ts=ts,
            src=replace(src, host=host, node=node, proc=proc, pid=pid),
            task_name=name,
            data=data,
        )
    if event.data.get("canvas") is not None or (event.task_name and "chord_unlock" in event.task_name):
        event = _checked_links(event, repaired)
    return event, tuple(dict.fromkeys(repaired)) if repaired else ()


# Source and task-name texts already found clean: the same few recur in every event of a process.
_CLEAN: set[Any] = set()
_CLEAN_MAX = 20_000


def _remember(text: Any) -> None:
    if text is not None:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.clear()
        _CLEAN.add(text)


def _checked_links(event: Event, repaired: list[str]) -> Event:
    """The ids a canvas (or a chord_unlock's arguments) links must be storable too: a canvas
    that links an unusable id is removed; unusable chord_unlock arguments reject the event."""
    try:
        _check_links(event)
        return event
    except Rejected:
        if event.data.get("canvas") is None:
            raise
    data = dict(event.data)
    previous = data.get(INVALID_KEY)
    invalid = dict(previous) if isinstance(previous, dict) else {}
    invalid["canvas"] = preview(data.pop("canvas"))
    data[INVALID_KEY] = invalid
    repaired.append("field_removed")
    event = replace(event, data=data)
    _check_links(event)
    return event


def _check_links(event: Event) -> None:
    try:
        ids = linked_ids(event)
    except Exception as exc:  # a canvas core cannot parse
        raise Rejected("bad_canvas", f"{type(exc).__name__}: {str(exc)[:100]}") from None
    for value in ids:
        _identity(value, "a linked id")
