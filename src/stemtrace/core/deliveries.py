"""Which attempt each event of a task belongs to: runs, deliveries and their pairing.

Split from :mod:`stemtrace.core.task` (the fold) by job: this groups a task's events (in
``(ts, key)`` order) by ``(generation, retries)``, splits execution events into runs (one per
``task.started`` in a process), pairs each run with the delivery (``task.received``) it
executed, and returns the drafts that :meth:`stemtrace.core.attempts.Draft.freeze` turns into
attempts.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from operator import attrgetter

from stemtrace.core import events as ev
from stemtrace.core.attempts import EXEC_TYPES, REDELIVERED_LOST, Draft
from stemtrace.core.events import Event
from stemtrace.core.states import TaskState

_LATEST = -1  # events that do not say which attempt they belong to
_FIRST_TRY_TYPES = frozenset({ev.TASK_PUBLISHED, ev.TASK_RECEIVED, ev.TASK_STARTED})


def _run_order(run: list[Event]) -> tuple[float, tuple[str, int]]:
    first = run[0].src
    return (min(e.ts for e in run), (first.inst, first.seq))


_SEQ = attrgetter("src.seq")


def _ready_order(event: Event) -> tuple[float, str, int]:
    return (event.ts, event.src.inst, event.src.seq)


def _runs(exec_events: list[Event]) -> list[list[Event]]:
    """Split execution events into runs: one per ``task.started`` in a process."""
    by_proc: dict[str, list[Event]] = {}
    for event in exec_events:
        inst = event.src.inst
        proc_events = by_proc.get(inst)
        if proc_events is None:
            by_proc[inst] = [event]
        else:
            proc_events.append(event)
    runs: list[list[Event]] = []
    started = ev.TASK_STARTED
    for proc_events in by_proc.values():
        if len(proc_events) > 1:
            proc_events.sort(key=_SEQ)
        current: list[Event] = []
        has_start = False
        for event in proc_events:
            if event.type == started:
                if has_start:
                    runs.append(current)
                    current = []
                has_start = True
            current.append(event)
        if current:
            runs.append(current)
    if len(runs) > 1:
        runs.sort(key=_run_order)
    return runs


def _delivery_order(event: Event) -> tuple[bool, float, tuple[str, int]]:
    src = event.src
    return (bool(event.data.get("redelivered")), event.ts, (src.inst, src.seq))


class _Picker:
    """Which delivery each run executed, in ``O(log n)`` per run.

    For a run starting at ``start`` on ``node``: the latest not yet taken delivery
    on that node received at or before ``start`` (the first in delivery order
    among equally late ones), else the first delivery not yet taken.
    """

    __slots__ = ("_by_node", "_next_free", "_taken", "received")

    def __init__(self, received: list[Event]) -> None:
        self.received = received
        self._taken = [False] * len(received)
        self._next_free = 0
        by_node: dict[str | None, list[tuple[float, int]]] = {}
        for index, event in enumerate(received):
            by_node.setdefault(event.src.node, []).append((event.ts, -index))
        for entries in by_node.values():
            entries.sort()
        self._by_node = by_node

    def pick(self, node: str | None, start: float) -> int | None:
        taken = self._taken
        entries = self._by_node.get(node)
        if entries:
            pos = bisect_right(entries, (start, math.inf))
            while pos > 0:
                pos -= 1
                index = -entries[pos][1]
                if taken[index]:
                    del entries[pos]  # taken earlier as some other run's fallback
                    continue
                del entries[pos]
                taken[index] = True
                return index
        while self._next_free < len(taken) and taken[self._next_free]:
            self._next_free += 1
        if self._next_free == len(taken):
            return None
        index = self._next_free
        taken[index] = True
        return index


def _deliveries(gen: int, retries: int, received: list[Event], runs: list[list[Event]]) -> list[Draft]:
    """Pair each run with the delivery (``task.received``) it executed."""
    if len(received) > 1:
        received = sorted(received, key=_delivery_order)
    drafts: list[Draft] = []
    picked: list[bool] = [False] * len(received)
    picker = _Picker(received) if runs and len(received) > 1 else None
    # A single delivery goes to the first run whatever its host: it is the only free one.
    single = 0 if len(received) == 1 else None
    for run in runs:
        start = min(e.ts for e in run)
        draft = Draft(order=(gen, retries, start, 0), run=run)
        if picker is not None:
            pick = picker.pick(run[0].src.node, start)
        else:
            pick, single = single, None
        if pick is not None:
            picked[pick] = True
            chosen = received[pick]
            draft.received = chosen
            draft.order = (gen, retries, min(start, chosen.ts), 0)
        drafts.append(draft)
    for i, event in enumerate(received):
        if not picked[i]:
            drafts.append(Draft(order=(gen, retries, event.ts, 1), received=event))
    if not drafts:
        drafts.append(Draft(order=(gen, retries, 0.0, 0)))
    if len(drafts) > 1:
        drafts.sort(key=lambda d: d.order)
    return drafts


def attempt_drafts(events: list[Event], generation: list[int], stated: list[int | None]) -> list[Draft]:
    """``stated`` is each event's own ``retries`` (``None`` when it does not say)."""
    # Per (generation, retries): its deliveries and its execution events, in (ts, key) order.
    keyed: dict[tuple[int, int], tuple[list[Event], list[Event], list[Event]]] = {}
    late: list[Event] = []
    failed, received_type, ready_type = ev.TASK_FAILED, ev.TASK_RECEIVED, ev.TASK_READY
    for event, gen, said in zip(events, generation, stated, strict=True):
        # Which retry the event belongs to; _LATEST for main-process verdicts.
        etype = event.type
        if said is not None:
            retries = said
        elif etype == failed and event.data.get("origin") == "main":
            retries = _LATEST
        else:
            retries = 0 if etype in _FIRST_TRY_TYPES else _LATEST
        if retries == _LATEST:
            late.append(event)
            continue
        group_key = (gen, retries)
        group = keyed.get(group_key)
        if group is None:
            group = keyed[group_key] = ([], [], [])
        if etype == received_type:
            group[0].append(event)
        elif etype in EXEC_TYPES:
            group[1].append(event)
        elif etype == ready_type:
            group[2].append(event)
    if not keyed:
        keyed[(0, 0)] = ([], [], [])
    drafts: list[Draft] = []
    groups = sorted(keyed)
    for pos, (gen, retries) in enumerate(groups):
        received, executed, ready = keyed[(gen, retries)]
        runs = _runs(executed)
        batch = _deliveries(gen, retries, received, runs)
        # A delivery followed by a redelivery of the same message: if it ran, its
        # worker was lost under it; if it never ran, it was only requeued.
        kept = [d for d in batch[:-1] if d.run] + [batch[-1]] if len(batch) > 1 else batch
        for draft in kept[:-1]:
            draft.forced_lost = REDELIVERED_LOST
        if ready:
            # The main process got this outcome from the child that ran the latest delivery.
            kept[-1].ready = max(ready, key=_ready_order)
        if pos + 1 < len(groups):
            # A later message exists, so this attempt did end even if its final
            # event was lost: it asked for a retry, or it was replaced.
            next_gen = groups[pos + 1][0]
            kept[-1].forced_state = TaskState.RETRY if next_gen == gen else TaskState.IGNORED
        drafts.extend(kept)
    drafts[-1].late.extend(late)
    return drafts
