"""How stored rows are spelled: JSON text, event bodies and envelopes, and SQL helpers for batches.

Shared by the writer (``write``, ``task_row``, ``summary``) and the reader (``read``), so what is
written is read back the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from stemtrace.core.events import Event
from stemtrace.core.jsontext import dumps as std_dumps
from stemtrace.core.rollup import PLUMBING_NAMES  # json's text, where orjson's would differ
from stemtrace.server.jsonfast import fast_dumps

CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    return ",".join("?" * n)


def dumps(value: Any) -> str:
    """Compact JSON: orjson's, else (non-str keys, big ints, non-finite floats, ...) ``json``'s.

    The two texts can differ in spelling (``1e-7`` for ``1e-07``) but parse to the same value.
    """
    text = fast_dumps(value)
    return std_dumps(value) if text is None else text


def event_body(e: Event) -> str:
    """The stored body: what the event's columns (``inst, seq, task_id, type, ts``) do not
    hold. ``envelope`` puts the two back together as ``e.to_dict()``."""
    src = e.src
    out = {
        "v": e.v,
        "host": src.host,
        "pid": src.pid,
        "proc": src.proc,
        "node": src.node,
        "name": e.task_name,
        "data": e.data,
    }
    text = fast_dumps(out)
    if text is None:  # json's text, with ``data`` as ``to_dict`` gives it (any Mapping)
        out["data"] = dict(e.data)
        text = std_dumps(out)
    return text


def envelope(
    inst: str, seq: int, task_id: str | None, etype: str, ts: float, *, body: dict[str, Any]
) -> dict[str, Any]:
    """A stored event as ``Event.to_dict()`` gives it, from its columns and parsed body."""
    out: dict[str, Any] = {
        "v": body["v"],
        "type": etype,
        "ts": ts,
        "src": {
            "host": body["host"],
            "pid": body["pid"],
            "inst": inst,
            "seq": seq,
            "proc": body["proc"],
            "node": body["node"],
        },
        "data": body["data"],
    }
    if task_id is not None:
        out["task"] = {"id": task_id, "name": body["name"]}
    return out


# Celery's plumbing (``celery.chord_unlock``) is never counted as the user's work: the SQL filter
# every count over tasks shares.
NOT_PLUMBING = "(name IS NULL OR name NOT IN ({}))".format(
    ", ".join(f"'{n}'" for n in sorted(PLUMBING_NAMES))
)
