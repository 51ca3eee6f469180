"""The designed structure of a workflow, read from the canvases its messages carry.

Celery embeds the future of a canvas (remaining chain steps, the chord callback,
link callbacks) in each message, with task ids already assigned. Walking those
summaries gives the edges between steps and the ``PLANNED`` steps not sent yet,
independent of the runtime ``parent_id``/``root_id`` (which for a chord callback
point at whichever header task finished last).
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stemtrace.core.canvas import Canvas, Sig, canvas_ids, entry_ids, parse_canvas
from stemtrace.core.model import GraphRecord

# When two facts give one (source, target) pair different kinds, the stronger wins,
# so the result does not depend on the order records were walked in.
EDGE_RANK = {"chord": 5, "chain": 4, "link": 3, "errback": 2, "replace": 1, "spawn": 0}
STRUCTURAL_KINDS = frozenset({"chain", "chord"})


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    name: str | None
    group_id: str | None
    group_index: int | None


@dataclass(slots=True)
class GroupInfo:
    """What is known about one group id: its members by ``group_index``, chord callback."""

    id: str
    chord: bool = False
    callback: str | None = None
    members: dict[int, set[str]] = field(default_factory=dict)

    def add_member(self, index: int, task_id: str) -> None:
        self.members.setdefault(index, set()).add(task_id)


@dataclass(slots=True)
class _Replay:
    """What walking one canvas from one more task adds, once the canvas was walked before.

    Every fact a walk adds is monotone (set members, max-rank edges, first-wins planned
    steps, min callbacks), so walking an already-walked canvas again changes nothing
    but what involves the walking task itself: the edges from it, which are recorded
    here, and its callback lists. ``ids`` are every id the canvas mentions: a task that
    is itself in its canvas (``task.replace()``) is always walked in full.
    """

    ids: frozenset[str]
    edges: list[tuple[str, str]] = field(default_factory=list)  # (target, kind) from the task
    # Set once a full walk was recorded in which the task id mattered only as the source of
    # ``edges`` (and the owner of its callback lists); otherwise every task walks in full.
    complete: bool = False


class Design:
    """Accumulates edges, planned tasks and groups from many records' canvases."""

    __slots__ = (
        "_defaults",
        "_own",
        "_parsed",
        "_replays",
        "_stated",
        "_trace",
        "callbacks",
        "edges",
        "errbacks",
        "groups",
        "planned",
    )

    def __init__(self) -> None:
        self.planned: dict[str, PlannedTask] = {}
        self.edges: dict[tuple[str, str], str] = {}
        self.groups: dict[str, GroupInfo] = {}
        self.callbacks: dict[str, list[Sig]] = {}
        self.errbacks: dict[str, list[Sig]] = {}
        # Group membership, three sources from strongest to weakest (``members``): what a
        # task's own message says, what a canvas names explicitly, what a canvas implies.
        self._own: dict[str, tuple[str, int]] = {}
        self._stated: dict[str, set[tuple[str, int]]] = {}
        self._defaults: dict[str, set[tuple[str, int]]] = {}
        self._parsed: dict[bytes, Canvas] = {}
        # (canvas key, the walking task's group id) -> its replay; the group id is in the
        # key because ``chord`` records the chord on the task's own group.
        self._replays: dict[tuple[bytes, str | None], _Replay] = {}
        self._trace: tuple[str, _Replay] | None = None  # the task whose walk is being recorded

    def parse(self, raw: Any) -> Canvas:
        """``parse_canvas(raw)``, parsed once per distinct summary."""
        return self._parse(raw)[0]

    def _parse(self, raw: Any) -> tuple[Canvas, bytes | None]:
        """The canvas and its cache key, ``None`` when it is parsed on its own.

        The members of a group or chord header carry the same summary (10,000 times
        on a big chord). ``marshal`` serialises only exact builtin types, and equal
        bytes load back into equal values of identical types, so equal keys always
        parse alike; anything it cannot serialise (subclasses, other objects) is
        parsed on its own.
        """
        try:
            key = marshal.dumps(raw)
        except (ValueError, TypeError):
            return parse_canvas(raw), None
        canvas = self._parsed.get(key)
        if canvas is None:
            canvas = self._parsed[key] = parse_canvas(raw)
        return canvas, key

    # -- facts ---------------------------------------------------------------
    def edge(self, source: str, target: str, kind: str) -> None:
        if source == target:
            return
        trace = self._trace
        if trace is not None and source == trace[0]:
            trace[1].edges.append((target, kind))
        key = (source, target)
        current = self.edges.get(key)
        if current is None or EDGE_RANK[kind] > EDGE_RANK[current]:
            self.edges[key] = kind

    def group(self, group_id: str) -> GroupInfo:
        info = self.groups.get(group_id)
        if info is None:
            info = self.groups[group_id] = GroupInfo(group_id)
        return info

    def member(self, task_id: str, group_id: str | None, group_index: int | None) -> None:
        # Membership is decided by group_index: on Celery 5.6+ a chord callback
        # carries the header's group id with group_index=None.
        if group_id and group_index is not None:
            self.group(group_id)
            self._stated.setdefault(task_id, set()).add((group_id, group_index))

    def members(self) -> None:
        """Put every task in its group(s): call once every record was added.

        A task's own message names its group; only a task without one is placed by what
        canvases say, and by what a canvas merely implies (``_default_member``) only when
        no canvas names a group for it. Celery 5.3 re-freezes a chord's group body under
        a new id when it applies it, so the id the design implies and the one the members
        carry differ: taking the strongest source, not every source, draws one box, and
        the same box whatever order the records came in.
        """
        for info in self.groups.values():
            info.members.clear()
        placed: dict[str, set[tuple[str, int]]] = {}
        for task_id, own in self._own.items():
            placed[task_id] = {own}
        for source in (self._stated, self._defaults):
            for task_id, found in source.items():
                if task_id not in placed:
                    placed[task_id] = found
        for task_id, found in placed.items():
            for group_id, index in found:
                self.group(group_id).add_member(index, task_id)

    def chord(self, group_id: str | None, body: Sig) -> None:
        if not group_id:
            return
        info = self.group(group_id)
        info.chord = True
        entries = entry_ids(body)
        if entries and (info.callback is None or entries[0] < info.callback):
            info.callback = entries[0]  # min keeps it order-independent if summaries disagree

    # -- walking -------------------------------------------------------------
    def walk(self, sig: Sig, preds: list[str], kind: str) -> list[str]:
        """Add ``sig`` after ``preds``; returns the ids its successors follow."""
        if sig.type == "task":
            if not sig.id:
                return []
            for pred in preds:
                self.edge(pred, sig.id, kind)
            if sig.id not in self.planned:
                self.planned[sig.id] = PlannedTask(sig.id, sig.name, sig.group_id, sig.group_index)
            self.member(sig.id, sig.group_id, sig.group_index)
            if sig.chord is not None:
                self.chord(sig.group_id, sig.chord)
                self.walk(sig.chord, [sig.id], "chord")
            self._links(sig.id, sig.callbacks, sig.errbacks)
            return [sig.id]
        if sig.type == "chain":
            current, step_kind = preds, kind
            for step in sig.tasks:
                current = self.walk(step, current, step_kind)
                step_kind = "chain"
            return current
        exits: list[str] = []
        for position, member in enumerate(sig.tasks):
            member_exits = self.walk(member, preds, kind)
            if sig.id:
                for exit_id in member_exits:
                    self._default_member(exit_id, sig.id, position)
            exits.extend(member_exits)
        if sig.id:
            self.group(sig.id)
        if sig.type == "chord" and sig.body is not None:
            self.chord(sig.id, sig.body)
            return self.walk(sig.body, exits, "chord")
        return exits

    def _default_member(self, task_id: str, group_id: str, position: int) -> None:
        """A group's (or chord header's) member that does not name its group yet.

        Embedded in a chain, a group or chord header is frozen before it is applied:
        its tasks carry ``group_index`` but no ``group_id`` (seen on Celery 5.3 and
        5.7), which only the messages sent later state. The enclosing signature's id
        is that group id, so planned members are drawn inside it from the start.
        """
        trace = self._trace
        if trace is not None and task_id == trace[0]:
            trace[1].complete = False  # this depends on the walking task: never replay it
        planned = self.planned.get(task_id)
        if planned is None:
            return
        index = planned.group_index if planned.group_index is not None else position
        self._defaults.setdefault(task_id, set()).add((group_id, index))
        self.group(group_id)
        if planned.group_id is None:
            self.planned[task_id] = PlannedTask(task_id, planned.name, group_id, index)

    def _links(
        self, task_id: str, callbacks: Iterable[Sig], errbacks: Iterable[Sig], *, walk: bool = True
    ) -> None:
        for sigs, kind, store in ((callbacks, "link", self.callbacks), (errbacks, "errback", self.errbacks)):
            for sig in sigs:
                known = store.setdefault(task_id, [])
                if sig not in known:
                    known.append(sig)
                if walk and entry_ids(sig):  # a callback frozen with an id is a planned step
                    self.walk(sig, [task_id], kind)

    def add_record(self, record: GraphRecord) -> None:
        """Everything ``record``'s own messages say about the structure around it."""
        task_id, group_id = record.id, record.group_id
        if group_id and record.group_index is not None:
            self.group(group_id)
            self._own[task_id] = (group_id, record.group_index)
        for raw in record.canvases:
            canvas, key = self._parse(raw)
            replay = self._replays.get((key, group_id)) if key is not None else None
            if replay is not None and replay.complete and task_id not in replay.ids:
                for target, kind in replay.edges:
                    self.edge(task_id, target, kind)
                if canvas.callbacks or canvas.errbacks:
                    self._links(task_id, canvas.callbacks, canvas.errbacks, walk=False)
                continue
            if key is not None and replay is None:
                replay = self._replays[(key, group_id)] = _Replay(frozenset(canvas_ids(canvas)))
                if task_id not in replay.ids:
                    replay.complete = True  # until the walk shows it depends on the task
                    self._trace = (task_id, replay)
            try:
                self._walk_canvas(task_id, group_id, canvas)
            finally:
                self._trace = None

    def _walk_canvas(self, task_id: str, group_id: str | None, canvas: Canvas) -> None:
        preds = [task_id]
        for step in canvas.chain:
            preds = self.walk(step, preds, "chain")
        if canvas.chord is not None:
            self.chord(group_id, canvas.chord)
            self.walk(canvas.chord, [task_id], "chord")
        self._links(task_id, canvas.callbacks, canvas.errbacks)

    def callback_names(self, task_id: str) -> tuple[set[str], set[str]]:
        """Names of the link and link_error callbacks designed on ``task_id``."""
        links = {s.name for s in self.callbacks.get(task_id, ()) if s.name}
        errs = {s.name for s in self.errbacks.get(task_id, ()) if s.name}
        return links, errs
