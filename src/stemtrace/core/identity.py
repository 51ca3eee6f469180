"""Workflow identity: which ids belong to the same causal unit.

``root_id`` is not a workflow id: every member of a group sent from a client is
its own root, and a chord callback inherits the root of whichever header task
finished last (or of ``celery.chord_unlock``). So every id an event mentions
(task, parent, root, group, canvas ids, the group a ``chord_unlock`` polls) is
unioned; a connected component is one workflow.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping
from typing import Any

from stemtrace.core.canvas import canvas_ids, parse_canvas
from stemtrace.core.events import TASK_EVENT_TYPES, Event

CHORD_UNLOCK = "celery.chord_unlock"
_ID_KEYS = ("parent_id", "root_id", "group_id")
# Ids of recently seen canvas summaries: every member of a big group or chord header
# carries the same one. Keyed by ``marshal`` bytes, which only exact builtin types
# have and which are equal only for equal values of identical types.
_CANVAS_IDS: dict[bytes, frozenset[str]] = {}
_CANVAS_IDS_MAX = 256


def _canvas_ids(canvas: Any) -> frozenset[str]:
    try:
        key = marshal.dumps(canvas)
    except (ValueError, TypeError):
        return frozenset(canvas_ids(parse_canvas(canvas)))
    ids = _CANVAS_IDS.get(key)
    if ids is None:
        ids = frozenset(canvas_ids(parse_canvas(canvas)))
        if len(_CANVAS_IDS) >= _CANVAS_IDS_MAX:
            _CANVAS_IDS.clear()
        _CANVAS_IDS[key] = ids
    return ids


def chord_unlock_ids(args: object) -> set[str]:
    """The header group id (``args[0]``) and body id a ``chord_unlock`` message names."""
    out: set[str] = set()
    if not isinstance(args, (list, tuple)) or not args:
        return out
    if isinstance(args[0], str) and args[0]:
        out.add(args[0])
    body = args[1] if len(args) > 1 else None
    if isinstance(body, Mapping):
        options = body.get("options")
        task_id = options.get("task_id") if isinstance(options, Mapping) else None
        if isinstance(task_id, str) and task_id:
            out.add(task_id)
    return out


def linked_ids(event: Event) -> frozenset[str]:
    """Every id ``event`` says is in the same workflow as ``event.task_id``."""
    if event.type not in TASK_EVENT_TYPES or not event.task_id:
        return frozenset()
    data = event.data
    ids = {event.task_id}
    for key in _ID_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            ids.add(value)
    canvas = data.get("canvas")
    if canvas:
        ids |= _canvas_ids(canvas)
    if event.task_name == CHORD_UNLOCK:
        ids |= chord_unlock_ids(data.get("args"))
    return frozenset(ids)


class UnionFind:
    """Disjoint sets of ids with a stable representative.

    The representative of a merged set is the one that was added first, so a
    workflow id shown on a page keeps resolving after a later event links another
    workflow into it. Path halving keeps ``find`` near O(1).
    """

    __slots__ = ("_order", "_parent")

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._order: dict[str, int] = {}

    def add(self, item: str) -> str:
        if item not in self._parent:
            self._parent[item] = item
            self._order[item] = len(self._order)
        return self.find(item)

    def find(self, item: str) -> str:
        parent = self._parent
        if item not in parent:
            return self.add(item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self._order[rb] < self._order[ra]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        return ra

    def add_linked(self, first: str, others: Iterable[str]) -> str:
        """Union ``first`` (added first, so it is preferred as representative) with ``others``."""
        root = self.add(first)
        for other in others:
            root = self.union(root, other)
        return root

    def add_event(self, event: Event) -> str | None:
        """Union everything ``event`` links; returns its workflow id (``None`` for non-task events)."""
        if event.task_id is None:
            return None
        ids = linked_ids(event)
        if not ids:
            return None
        return self.add_linked(event.task_id, sorted(ids))

    def __contains__(self, item: object) -> bool:
        return item in self._parent

    def groups(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for item in self._parent:
            out.setdefault(self.find(item), set()).add(item)
        return out
