"""The wire format (version 1): one transport message is one batch of events from one process.

The library encodes with :func:`encode_batch`, the server decodes with :func:`decode_batch`
(or :func:`decode_items` for a message it parsed itself); the row shapes both read are the one
table :data:`ROW_SHAPES`. See docs/events.md, "Batches on the wire"::

    {"v": 1,
     "src": {"host": "vm", "pid": 6159, "inst": "9f0c…", "proc": "child", "node": "w1@vm"},
     "cols": {"task.started": ["retries", "worker_pid", …]},
     "events": [["task.started", 1795480694309215744, 17, "<task id>", "<task name>", 0, 6203, …],
                {"type": "task.failed", "ts": 1795480694.402, "seq": 18, "task": {…}, "data": {…}}]}

The process is stated once (``src``); an event carries its own ``seq``, and ``proc``/``node``
only where they differ from the batch's. A *row* is ``[type, ts, seq, task id, task name,
*values]``: ``values`` are those of ``cols[type]``, optionally followed by one object of further
``data`` fields; a row's ``ts`` is an integer count of nanoseconds since the epoch (a float's
shortest text costs the library more than the rest of the row), an object's ``ts`` seconds.
The hot task events go as rows: ``cols[type]`` is their :data:`ROW_SHAPES` entry, then the
captured values the sender put in columns (``capture.finish.Finisher.columns``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from stemtrace.core.events import (
    TASK_EVENT_TYPES,
    TASK_PUBLISHED,
    TASK_RECEIVED,
    TASK_STARTED,
    TASK_SUCCEEDED,
    Event,
    MalformedEvent,
    batch_source,
    decode_event,
    decode_in_batch,
)
from stemtrace.core.jsontext import dumps

BATCH_VERSION: Final = 1
ROW_HEAD: Final = ("type", "ts", "seq", "task_id", "task_name")  # a row's first items

# What the message headers say, in the order both the sending and the receiving side read them.
_HEADERS: Final = ("root_id", "parent_id", "group_id", "group_index", "retries", "eta", "expires")

# The ``data`` fields a hot event's row carries after ``ROW_HEAD``, in order: the commonest
# events, one or more per task. ``capture.fields`` says where each comes from in Celery.
ROW_SHAPES: Final[dict[str, tuple[str, ...]]] = {
    TASK_PUBLISHED: (
        *_HEADERS,
        "queue",
        "exchange",
        "routing_key",
        "replaced_task_nesting",
        "publisher_task_id",
        "shadow",
        "ignore_result",
        "beat",
    ),
    TASK_RECEIVED: (
        *_HEADERS,
        "replaced_task_nesting",
        "redelivered",
        "exchange",
        "routing_key",
        "queue",
        "beat",
    ),
    # ``traceparent``, ``sentry_trace``: the trace context the sender's tracing put in the message
    # headers, as written (``core.tracing`` reads them); added within version 1, before any
    # release: a batch names its columns, so a reader of either shape reads both.
    TASK_STARTED: (
        "retries",
        "worker_pid",
        "root_id",
        "parent_id",
        "group_id",
        "group_index",
        "traceparent",
        "sentry_trace",
    ),
    TASK_SUCCEEDED: ("retries", "runtime", "handler_runtime"),
}


def encode_batch(events: list[Any], src: Mapping[str, Any], cols: Mapping[str, Any] | None = None) -> bytes:
    """One message: ``events`` (rows of the fields ``cols`` names for their type, or event
    objects with their ``seq``) from the process ``src`` (host, pid, inst, proc, node).
    ``default=repr`` means it never raises."""
    value: dict[str, Any] = {"v": BATCH_VERSION, "src": src}
    if cols:
        value["cols"] = cols
    value["events"] = events
    # "replace" turns a lone surrogate (from undecodable bytes) into "?" instead of raising.
    return dumps(value).encode("utf-8", "replace")


def decode_batch(payload: bytes | str) -> tuple[list[Event], list[MalformedEvent]]:
    """The events of one transport message, and what was wrong with any that could not be read.

    Never raises: a broken message yields one :class:`MalformedEvent`, a broken element is
    skipped on its own so its neighbours still count.
    """
    try:
        parsed = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], [MalformedEvent("invalid_json", str(exc)[:80])]
    return decode_items(parsed)


def decode_items(parsed: Any) -> tuple[list[Event], list[MalformedEvent]]:
    """:func:`decode_batch` for a message its caller already parsed from JSON."""
    try:
        items, src, cols = _batch(parsed)
    except MalformedEvent as exc:
        return [], [exc]
    events: list[Event] = []
    errors: list[MalformedEvent] = []
    base = batch_source(src)
    for item in items:
        try:
            if type(item) is list:
                row = row_item(item, cols)
                # With an unusable batch src, decode_event says why for each event.
                events.append(decode_event(row, src) if base is None else decode_in_batch(row, base))
            elif base is not None and type(item) is dict and "proc" not in item and "node" not in item:
                events.append(decode_in_batch(item, base))
            else:
                events.append(decode_event(item, src))
        except MalformedEvent as exc:
            errors.append(exc)
    return events, errors


def row_item(row: list[Any], cols: Mapping[str, list[str]]) -> dict[str, Any]:
    """A row as the event object it stands for (``ts`` in seconds)."""
    etype = row[0] if row else None
    if type(etype) is not str or etype not in TASK_EVENT_TYPES:
        raise MalformedEvent("unknown_type", f"row type {etype!r}"[:60])
    names = cols.get(etype)
    if names is None:
        raise MalformedEvent("bad_row", f"the batch's 'cols' has no fields for {etype}")
    head = len(ROW_HEAD)
    end = head + len(names)
    size = len(row)
    if size == end:
        data = dict(zip(names, row[head:], strict=True))
    elif size == end + 1 and type(row[end]) is dict:
        data = dict(zip(names, row[head:end], strict=True))
        data.update(row[end])
    else:
        raise MalformedEvent("bad_row", f"{etype} row of {size} items for {len(names)} fields")
    ts = row[1]
    try:
        if type(ts) is not int:
            raise TypeError(ts)
        seconds = ts / 1e9
    except (TypeError, OverflowError):
        got = f"a row's ts is integer nanoseconds, got {ts!r}"[:80]
        raise MalformedEvent("bad_timestamp", got) from None
    return {"type": etype, "ts": seconds, "seq": row[2], "task": {"id": row[3], "name": row[4]}, "data": data}


def _batch(parsed: Any) -> tuple[list[Any], Mapping[str, Any], Mapping[str, list[str]]]:
    """A message's events, its ``src`` and its ``cols``, or why it is not a batch this reads."""
    if not isinstance(parsed, dict):
        raise MalformedEvent("bad_batch", f"a message is a batch object, got {type(parsed).__name__}")
    version = parsed.get("v")
    if type(version) is not int:
        raise MalformedEvent("bad_version", repr(version)[:40])
    if version > BATCH_VERSION:
        raise MalformedEvent("newer_schema", f"batch v={version}, this server understands v<={BATCH_VERSION}")
    if version != BATCH_VERSION:
        raise MalformedEvent("bad_version", f"a batch needs v={BATCH_VERSION}, got {version}")
    items, src, cols = parsed.get("events"), parsed.get("src"), parsed.get("cols", {})
    if not isinstance(items, list):
        raise MalformedEvent("bad_batch", "'events' must be an array")
    if not isinstance(src, dict):
        raise MalformedEvent("bad_source", "the batch's 'src' must be an object")
    if not (
        isinstance(cols, dict)
        and all(
            isinstance(names, list) and all(type(n) is str for n in names) and len(set(names)) == len(names)
            for names in cols.values()
        )
    ):
        raise MalformedEvent("bad_batch", "'cols' must map event types to arrays of distinct field names")
    return items, src, cols
