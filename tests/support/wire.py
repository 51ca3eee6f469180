"""Test and benchmark helpers around the wire format (``stemtrace.core.wire``).

Tests and tools think in full event envelopes (``Event.to_dict()``: ``v``, ``type``, ``ts``,
``src`` with ``seq``, ``task``, ``data``); the wire carries batches of one process. These
convert between the two. They are not part of the library: the library builds its batches
straight from its buffered entries, the server decodes them with ``core.wire.decode_items``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from stemtrace.core.events import SCHEMA_VERSION, MalformedEvent, merged_src
from stemtrace.core.wire import BATCH_VERSION, ROW_SHAPES, encode_batch, row_item


def expand(parsed: Any) -> list[Any]:
    """A decoded batch as a list of full envelopes; elements it cannot expand are passed
    through as they are (a test can then see what was wrong)."""
    if not (isinstance(parsed, dict) and parsed.get("v") == BATCH_VERSION):
        return [parsed]
    items, src, cols = parsed.get("events") or [], parsed.get("src") or {}, parsed.get("cols") or {}
    out: list[Any] = []
    for given in items:
        item = given
        if isinstance(given, list):
            try:
                item = row_item(given, cols)
            except MalformedEvent:
                pass
        if isinstance(item, dict):
            full = {k: v for k, v in item.items() if k not in ("seq", "proc", "node")}
            full["v"] = SCHEMA_VERSION
            full["src"] = merged_src(item, src)
            out.append(full)
        else:
            out.append(item)
    return out


def compact(
    envelopes: list[dict[str, Any]], cols: Mapping[str, Sequence[str]] | None = None
) -> tuple[list[Any], dict[str, Any], dict[str, list[str]]]:
    """The inverse of :func:`expand` for one process's full envelopes: ``(events, src, cols)`` for
    ``encode_batch(events, src, cols)``. With ``cols`` (field names by event type), the task events
    of those types that hold those fields become rows, as the library sends them."""
    src = {k: v for k, v in envelopes[0]["src"].items() if k != "seq"}
    used: dict[str, list[str]] = {}
    events: list[Any] = []
    for e in envelopes:
        own = e["src"]
        differs = [key for key in ("proc", "node") if own.get(key) != src.get(key)]
        names = (cols or {}).get(e["type"])
        data, task = e.get("data") or {}, e.get("task")
        if names is not None and not differs and task is not None and all(n in data for n in names):
            ts = e["ts"]
            if type(ts) in (int, float) and math.isfinite(ts):  # seconds to a row's nanoseconds
                ts = round(ts * 1e9)
            row = [e["type"], ts, own["seq"], task["id"], task.get("name"), *(data[n] for n in names)]
            extra = {k: v for k, v in data.items() if k not in names}
            if extra:
                row.append(extra)
            used[e["type"]] = list(names)
            events.append(row)
            continue
        item = {k: v for k, v in e.items() if k not in ("v", "src")}
        item["seq"] = own["seq"]
        for key in differs:
            item[key] = own.get(key)
        events.append(item)
    return events, src, used


def encode_envelopes(
    envelopes: Sequence[dict[str, Any]], cols: Mapping[str, Sequence[str]] | None = ROW_SHAPES
) -> list[bytes]:
    """Full envelopes as the messages the library would send: one batch per process, in order of
    first appearance, the hot task events as rows (``cols``; ``None`` for objects only)."""
    by_inst: dict[str, list[dict[str, Any]]] = {}
    for e in envelopes:
        by_inst.setdefault(e["src"]["inst"], []).append(e)
    return [encode_batch(*compact(evs, cols)) for evs in by_inst.values()]


def encode_one(
    envelopes: Sequence[dict[str, Any]], cols: Mapping[str, Sequence[str]] | None = ROW_SHAPES
) -> bytes:
    """:func:`encode_envelopes` for envelopes of one process: its one message."""
    (message,) = encode_envelopes(envelopes, cols)
    return message
