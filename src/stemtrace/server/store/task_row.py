"""The task row: its columns, how a folded task becomes one, and how rows are inserted.

One place declares the row (``TASK_COLUMNS``/``TASK_TYPES``) and builds it (``task_row``), so the
writer, the search document and the readers agree on what each column holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from stemtrace.core.events import Event
from stemtrace.core.jsontext import dumps as std_dumps  # json's text, where orjson's would differ
from stemtrace.core.model import Attempt, TaskRecord
from stemtrace.server.store import rollups, search
from stemtrace.server.store.codec import dumps

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

ARGS_TEXT_MAX = 4000
PREVIEW_MAX = 120


TASK_COLUMNS = (
    "id, name, state, workflow_id, parent_id, root_id, group_id, worker, queue, retries, sort_ts, sent_at, "
    "received_at, started_at, finished_at, runtime_ms, exception_type, args_text, args_preview, updated_at, "
    "ingested_at, detail, graph, routing_key, beat_entry, eta, source"
)
# The PostgreSQL type of each of ``TASK_COLUMNS`` (see ``Dialect.insert_rows``).
TASK_TYPES = (
    *("text",) * 9,  # id .. queue
    "integer",  # retries
    *("float8",) * 6,  # sort_ts .. runtime_ms
    *("text",) * 3,  # exception_type, args_text, args_preview
    *("float8",) * 2,  # updated_at, ingested_at
    *("text",) * 4,  # detail, graph, routing_key, beat_entry
    "float8",  # eta
    "text",  # source
)


def write_tasks(w: BatchWriter, rows: Sequence[Sequence[Any]]) -> None:
    cols = [c.strip() for c in TASK_COLUMNS.split(",")]
    assert len(cols) == len(TASK_TYPES)
    # A row rewritten without its source (LOST marking, a salvage) keeps the one it has.
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:] if c != "source")
    updates += ", source = CASE WHEN excluded.source = '' THEN tasks.source ELSE excluded.source END"
    rollups.apply(w, rows)  # the roll-ups follow every task row write, in its transaction
    w.d.insert_rows(
        w.conn,
        f"INSERT INTO tasks ({TASK_COLUMNS})",
        TASK_TYPES,
        rows,
        tail=f"ON CONFLICT (id) DO UPDATE SET {updates}",
    )


def _extra(events: Sequence[Event]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in events:
        data = e.data
        if "args_repr" in data or "kwargs_repr" in data:
            break
    else:
        return out  # the common case: nobody set a repr, no need to sort
    for e in sorted(events, key=lambda ev: ev.ts):
        for key in ("args_repr", "kwargs_repr"):
            if e.get(key) is not None and key not in out:
                out[key] = e.get(key)
    return out


_RECORD_FIELDS = tuple(f.name for f in fields(TaskRecord))
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


_record_values = attrgetter(*_RECORD_FIELDS)
_attempt_values = attrgetter(*_ATTEMPT_FIELDS)


def record_dict(record: TaskRecord) -> dict[str, Any]:
    """The record as its stored ``detail``: ``to_dict`` without the fields that hold their
    default (``None``, ``0``, empty, ``False``), which ``TaskRecord.from_dict`` restores.

    Most fields of most tasks are unset, so this cuts the text every task write stores and
    every task read parses by about a quarter; it also skips ``asdict``'s deep copies (the
    hot path of ingest).
    ``id``, ``name`` and ``state`` (and an attempt's ``number`` and ``state``) are always
    kept: they have no default, and servers before this one require them.
    """
    out = {k: v for k, v in zip(_RECORD_FIELDS, _record_values(record), strict=True) if v is not None}
    out["name"] = record.name
    out["state"] = record.state._value_
    if not record.replaced_task_nesting:
        out.pop("replaced_task_nesting", None)
    if not record.retries:
        out.pop("retries", None)
    if record.names:
        out["names"] = list(record.names)
    else:
        out.pop("names", None)
    if record.canvases:
        out["canvases"] = [dict(c) for c in record.canvases]
    else:
        out.pop("canvases", None)
    if record.attempts:
        attempts = []
        for a in record.attempts:
            item = {
                k: v
                for k, v in zip(_ATTEMPT_FIELDS, _attempt_values(a), strict=True)
                if v is not None and v is not False
            }
            item["state"] = a.state._value_
            attempts.append(item)
        out["attempts"] = attempts
    else:
        out.pop("attempts", None)
    return out


def task_row(
    record: TaskRecord,
    events: Sequence[Event],
    workflow_id: str,
    first_seen: float,
    now: float,
    *,
    extra: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The task's row; ``extra`` (the ``args_repr``/``kwargs_repr`` seen) defaults to what
    ``events`` say, and is given when a stored row is rewritten without its events."""
    extra = _extra(events) if extra is None else dict(extra)
    if "args_repr" in extra or "kwargs_repr" in extra:
        text = f"{extra.get('args_repr') or ''} {extra.get('kwargs_repr') or ''}".strip()
    elif record.args is None and record.kwargs is None:
        text = ""
    else:
        text = dumps([record.args, record.kwargs])
    detail = record_dict(record)
    if extra:
        detail["_extra"] = extra
    encode = dumps if _finite_runtimes(record) else std_dumps
    return [
        record.id,
        record.name,
        record.state.value,
        workflow_id,
        record.parent_id,
        record.root_id,
        record.group_id,
        record.worker,
        record.queue,
        record.retries,
        record.sent_at if record.sent_at is not None else first_seen,
        record.sent_at,
        record.received_at,
        record.started_at,
        record.finished_at,
        record.runtime_ms,
        record.exception_type,
        search.document(record, extra),  # args_text: the task's search document (store/search.py)
        text[:PREVIEW_MAX] or None,
        record.updated_at,
        now,
        encode(detail),
        encode(graph_extra(record)),
        record.routing_key,
        record.beat_entry,
        record.eta_at,
        "",  # source: the label of the event source, stamped by ``stamp_source``
    ]


def _finite_runtimes(record: TaskRecord) -> bool:
    """False when a computed runtime overflowed (orjson would write ``null`` for it)."""
    runtime = record.runtime_ms
    if runtime is not None and runtime - runtime != 0.0:
        return False
    return all(a.runtime_ms is None or a.runtime_ms - a.runtime_ms == 0.0 for a in record.attempts)


def graph_extra(record: TaskRecord) -> list[Any]:
    """What a workflow graph reads from a record beyond the task columns (see ``read.skeleton``).

    A task that ran more than once also gets its attempts' spans, ``[number, state, worker,
    received_at, started_at, finished_at]`` each; rows written before spans were kept have
    six items, and their graph nodes show no spans.
    """
    attempts = record.attempts
    out: list[Any] = [
        record.group_index,
        record.replaced_task_nesting,
        len(attempts),
        list(record.names),
        record.publisher_task_id,
        [dict(c) for c in record.canvases],
    ]
    if len(attempts) > 1:
        out.append(
            [
                [a.number, a.state.value, a.worker, a.received_at, a.started_at, a.finished_at]
                for a in attempts
            ]
        )
    return out


# Task row columns ``_final_row`` fills in (see ``TASK_COLUMNS``).
_WORKFLOW, _INGESTED = 3, 20


def stamp_source(rows: Mapping[str, list[Any]], source: str) -> None:
    """Every row as from the event source labelled ``source`` (``--source NAME=…``)."""
    if source:
        for row in rows.values():
            row[-1] = source


def _final_row(planned: list[Any], workflow_id: str, now: float) -> list[Any]:
    """A planned task row (``plan_batch``), its workflow and ``ingested_at`` filled in."""
    planned[_WORKFLOW] = workflow_id
    planned[_INGESTED] = now
    return planned
