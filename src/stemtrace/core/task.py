"""Fold every event of one task id into a :class:`TaskRecord`.

A pure reducer: the same *set* of events gives the same record whatever order they
arrived in and however often each was delivered (duplicates share ``Event.key``).
See :mod:`stemtrace.core.deliveries` and :mod:`stemtrace.core.attempts` for how events become
attempts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from stemtrace.core import events as ev
from stemtrace.core.attempts import single_attempt
from stemtrace.core.deliveries import attempt_drafts
from stemtrace.core.events import Event
from stemtrace.core.model import Attempt, TaskRecord
from stemtrace.core.slots import slot_builder
from stemtrace.core.states import FINAL_STATES, TaskState

_new_task_record = slot_builder(TaskRecord)  # TaskRecord(**fields), faster


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


_MESSAGE_TYPES = frozenset({ev.TASK_PUBLISHED, ev.TASK_RECEIVED})


def _generations(events: list[Event], nestings: list[int | None]) -> list[int]:
    """The ``replaced_task_nesting`` each event belongs to (aligned with ``events``,
    which are in ``(ts, key)`` order; ``nestings`` is what each event itself says).

    Only messages carry the nesting; execution events inherit it from the message
    their task name was published with, or from the latest generation published
    before them when one name was used at several nestings.
    """
    distinct = {n for n in nestings if n is not None}
    if len(distinct) <= 1:
        # Nobody says otherwise (or everybody agrees): one generation for all.
        only = distinct.pop() if distinct else 0
        return [only] * len(events)
    by_name: dict[str, set[int]] = defaultdict(set)
    starts: dict[int, float] = {}
    for event, nesting in zip(events, nestings, strict=True):
        if nesting is None:
            continue
        if event.task_name:
            by_name[event.task_name].add(nesting)
        starts[nesting] = min(starts.get(nesting, event.ts), event.ts)
    out: list[int] = []
    for event, nesting in zip(events, nestings, strict=True):
        if nesting is not None:
            out.append(nesting)
            continue
        names = by_name.get(event.task_name or "", set())
        if len(names) == 1:
            out.append(next(iter(names)))
            continue
        candidates = [g for g, ts in starts.items() if ts <= event.ts and (not names or g in names)]
        fallback = sorted(names) or sorted(starts) or [0]
        out.append(max(candidates) if candidates else fallback[0])
    return out


def _canvases(messages: list[Event]) -> tuple[Mapping[str, Any], ...]:
    found: list[Mapping[str, Any]] = []
    for event in messages:
        canvas = event.data.get("canvas")
        if canvas is not None and (type(canvas) is dict or isinstance(canvas, Mapping)):
            found.append(canvas)
    if len(found) <= 1:
        return tuple(found)
    seen: set[str] = set()
    out: list[Mapping[str, Any]] = []
    for canvas in found:
        if any(canvas is kept for kept in out):
            continue  # the same object has the same fingerprint
        fingerprint = json.dumps(canvas, sort_keys=True, default=repr)
        if fingerprint not in seen:
            seen.add(fingerprint)
            out.append(canvas)
    return tuple(out)


def _first(messages: list[Event], key: str) -> Any:
    for message in messages:
        value = message.data.get(key)
        if value is not None:
            return value
    return None


_NEWEST_KEYS = ("queue", "routing_key", "exchange", "eta", "expires", "args", "kwargs", "beat")
BEAT_ENTRY_MAX = 200  # characters of an entry name kept (a name is a key, not a document)


def beat_entry(messages: list[Event], name: str | None) -> str | None:
    """The schedule entry that sent a task, by what its messages say in ``beat``: an entry's
    name (beat ran stemtrace, or django-celery-beat named it), else ``True`` when a message was
    only marked as beat's (Celery >= 5.7 without stemtrace in beat): the task's name stands for
    the entry then, as beat schedules most tasks under one entry each."""
    marked = False
    for message in messages:
        value = message.data.get("beat")
        if type(value) is str and value:
            return value[:BEAT_ENTRY_MAX]
        if value is True:
            marked = True
    return name if marked and name else None


def _firsts(messages: list[Event], keys: tuple[str, ...]) -> dict[str, Any]:
    """``{key: _first(messages, key)}`` for every key, in one pass over ``messages``."""
    out: dict[str, Any] = dict.fromkeys(keys)
    missing = list(keys)
    for message in messages:
        get = message.data.get
        still = []
        for key in missing:
            value = get(key)
            if value is None:
                still.append(key)
            else:
                out[key] = value
        if not still:
            break
        missing = still
    return out


def _designed(messages: list[Event], key: str) -> Any:
    """A structural id as the *first* message that states it says (``None`` included):
    later messages (retries, a chord callback's runtime parent) say something else."""
    for message in messages:
        data = message.data
        if key in data:
            return data.get(key)
    return None


def fold_task(task_id: str, events: Iterable[Event]) -> TaskRecord:
    """Every event of ``task_id`` (any order, duplicates allowed) as one record."""
    unique: dict[tuple[str, int], Event] = {}
    for e in events:
        if e.task_id == task_id:
            src = e.src
            unique[(src.inst, src.seq)] = e
    # (ts, key) order; keys are unique, so two items never tie and events are never compared.
    decorated = [(e.ts, k, e) for k, e in unique.items()]
    decorated.sort()
    ordered = [item[2] for item in decorated]
    # One pass gathers what each event says (its ``retries`` and nesting) and what the
    # record reads off the events in (ts, key) order.
    stated: list[int | None] = []
    nestings: list[int | None] = []
    message_pos: list[int] = []
    names: list[str] = []
    sent_at: float | None = None
    success: Event | None = None
    updated_at: float | None = None
    max_retries: int | None = None
    published_type, succeeded_type = ev.TASK_PUBLISHED, ev.TASK_SUCCEEDED
    for i, e in enumerate(ordered):
        data = e.data
        retries = data.get("retries")
        if retries is not None and type(retries) is not int:
            retries = _int(retries)
        stated.append(retries)
        said = retries or 0
        if max_retries is None or said > max_retries:
            max_retries = said  # what max() keeps
        nesting = data.get("replaced_task_nesting")
        nestings.append(nesting if nesting is None or type(nesting) is int else _int(nesting))
        etype = e.type
        if etype in _MESSAGE_TYPES:
            message_pos.append(i)
            if etype == published_type and (sent_at is None or e.ts < sent_at):
                sent_at = e.ts  # what min() keeps
        elif etype == succeeded_type and success is None and "result" in data:
            success = e
        task_name = e.task_name
        if task_name and task_name not in names:
            names.append(task_name)
        ts = e.ts
        if updated_at is None or ts > updated_at:
            updated_at = ts  # what max() keeps
    generation = _generations(ordered, nestings)
    single_generation = len(set(generation)) <= 1
    single = single_attempt(ordered, stated) if single_generation else None
    if single is not None:
        attempts: tuple[Attempt, ...] = (single,)
    else:
        drafts = attempt_drafts(ordered, generation, stated)
        if len(drafts) == 1:
            attempts = (drafts[0].freeze(1),)
        else:
            attempts = tuple(d.freeze(n) for n, d in enumerate(drafts, start=1))
    latest = attempts[-1]

    # Published messages first (they carry what the sender designed), then in
    # (ts, key) order: a stable sort of events already in that order.
    if len(message_pos) > 1:
        message_pos.sort(
            key=lambda i: (
                generation[i],
                stated[i] or 0,
                ordered[i].type != published_type,
            )
        )
    messages = [ordered[i] for i in message_pos]
    newest_first = messages[::-1]
    if not single_generation:
        # Names in generation order, not (ts, key) order.
        positions = sorted(range(len(ordered)), key=generation.__getitem__)
        names = []
        for i in positions:
            task_name = ordered[i].task_name
            if task_name and task_name not in names:
                names.append(task_name)
    name = names[-1] if names else None
    for message in newest_first:
        if message.task_name:
            name = message.task_name
            break
    received = [a.received_at for a in attempts if a.received_at is not None]
    started = [a.started_at for a in attempts if a.started_at is not None]
    group_index = _designed(messages, "group_index")
    parent_id = _designed(messages, "parent_id")
    newest = _firsts(newest_first, _NEWEST_KEYS)
    return _new_task_record(
        id=task_id,
        name=name,
        state=latest.state,
        root_id=_first(messages, "root_id"),
        parent_id=parent_id if parent_id != task_id else None,
        group_id=_designed(messages, "group_id"),
        group_index=group_index if isinstance(group_index, int) else None,
        publisher_task_id=_first(messages, "publisher_task_id"),
        replaced_task_nesting=max(generation, default=0),
        names=tuple(names),
        worker=latest.worker or next((a.worker for a in reversed(attempts) if a.worker), None),
        queue=newest["queue"],
        routing_key=newest["routing_key"],
        exchange=newest["exchange"],
        beat_entry=None if newest["beat"] is None else beat_entry(messages, name),
        retries=0 if max_retries is None else max_retries,
        eta=newest["eta"],
        expires=newest["expires"],
        sent_at=sent_at,
        received_at=min(received) if received else None,
        started_at=min(started) if started else None,
        finished_at=latest.finished_at if latest.state in FINAL_STATES else None,
        runtime_ms=latest.runtime_ms,
        exception_type=latest.exception_type,
        exception=latest.exception,
        traceback=latest.traceback,
        exception_original_size=latest.exception_original_size,
        traceback_original_size=latest.traceback_original_size,
        handler_ms=latest.handler_ms,
        args=newest["args"],
        kwargs=newest["kwargs"],
        result=success.data.get("result") if success is not None else None,
        canvases=_canvases(messages),
        attempts=attempts,
        updated_at=updated_at,
    )


def mark_lost(record: TaskRecord, reason: str, at: float) -> TaskRecord:
    """The worker went offline while this task's latest attempt was running."""
    if not record.attempts or record.state not in (TaskState.STARTED, TaskState.RECEIVED):
        return record
    last: Attempt = record.attempts[-1]
    lost = replace(last, state=TaskState.LOST, lost_reason=reason, finished_at=at)
    return replace(
        record,
        state=TaskState.LOST,
        attempts=(*record.attempts[:-1], lost),
        finished_at=at,
        updated_at=max(record.updated_at or at, at),
    )
