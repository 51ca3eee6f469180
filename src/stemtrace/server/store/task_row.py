"""The task row: its columns, how a folded task becomes one, and how rows are inserted.

One table declares the row (``TASK_TABLE``: name, both engines' types, index); the schema's
DDL and indices, the insert and the row ``task_row`` builds are generated from it, so the
writer, the schema and the readers agree on what each column holds by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from stemtrace.core.events import Event
from stemtrace.core.jsontext import dumps as std_dumps  # json's text, where orjson's would differ
from stemtrace.core.model import Attempt, TaskRecord
from stemtrace.server.store import rollups, search
from stemtrace.server.store.body import event_log, pack
from stemtrace.server.store.codec import dumps

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

ARGS_TEXT_MAX = 4000
PREVIEW_MAX = 120


class Index(NamedTuple):
    """An index a column leads. A *list* index ends in ``sort_ts``, so the task list filtered
    on the column pages newest first as a range scan (``read.Reader._page``; the engine sorts
    only the tasks of equal ``sort_ts`` by id, a few at most, where the id in every entry of
    every list index took ~290 bytes a task: docs/adr/0014-compact-storage.md); a
    *partial* one leaves out the rows where the column is NULL (most tasks have no exception
    and are in no group, so the index stays small and their writes skip it)."""

    name: str
    listed: bool = True
    partial: bool = False
    where: str = ""  # a partial index's own condition, instead of ``IS NOT NULL``
    then: tuple[str, ...] = ()  # columns between the leading one and ``sort_ts``


class Column(NamedTuple):
    """One column of the ``tasks`` table.

    ``kind`` gives both engines' types (``KINDS``): the DDL type, with the dialect's slots
    (``{float}`` is REAL on SQLite, DOUBLE PRECISION on PostgreSQL), and the PostgreSQL array
    type the bulk insert binds the column as (``Dialect.insert_rows``). ``since`` is the schema
    version that added it: the first version creates the table with the columns of version 1,
    a later one adds its own (``tasks_ddl``), so a store made at any version ends up the same.
    """

    name: str
    kind: str
    constraint: str = ""
    indexed: Index | None = None
    since: int = 1


# kind -> (DDL type, PostgreSQL bind type). ``id`` columns compare bytewise on PostgreSQL
# (``COLLATE "C"``), so id ranges and keyset cursors order as on SQLite.
KINDS = {
    "id": ("{text_c}", "text"),
    "text": ("TEXT", "text"),
    "int": ("INTEGER", "integer"),
    "float": ("{float}", "float8"),
    "blob": ("{blob}", "bytea"),
}

# The task row, declared once: the table's DDL and indices (``schema``), the insert
# (``write_tasks``) and the row ``task_row`` builds are all generated from this, in this order.
TASK_TABLE: tuple[Column, ...] = (
    Column("id", "id", "PRIMARY KEY"),
    Column("name", "text", indexed=Index("tasks_name")),
    Column("state", "text", "NOT NULL", indexed=Index("tasks_state")),
    Column("workflow_id", "id", indexed=Index("tasks_workflow")),
    Column("parent_id", "id", indexed=Index("tasks_parent", listed=False)),
    # NULL when the task is its own root (most are: every task sent on its own, and the
    # members of a group sent from outside a task), '' when no event named one (``ROOT``).
    Column("root_id", "id"),
    Column("group_id", "id", indexed=Index("tasks_group", partial=True)),
    Column("worker", "text", indexed=Index("tasks_worker")),
    Column("queue", "text", indexed=Index("tasks_queue")),
    Column("retries", "int", "NOT NULL DEFAULT 0"),
    # The list's order: ``sent_at``, else when the store first saw the task.
    Column("sort_ts", "float", "NOT NULL", indexed=Index("tasks_sort")),
    Column("sent_at", "float"),
    Column("received_at", "float"),
    Column("started_at", "float"),
    Column("finished_at", "float"),
    Column("runtime_ms", "float"),
    Column("exception_type", "text", indexed=Index("tasks_exception", partial=True)),
    # The task's search document (``store/search.py``), indexed for full text by engine.
    Column("args_text", "text"),
    Column("args_preview", "text"),
    Column("updated_at", "float"),
    # When this server last wrote the row: the live stream's cursor; retention's too.
    Column("ingested_at", "float", "NOT NULL", indexed=Index("tasks_ingested", listed=False)),
    # The record (``record_dict``) and the task's events, compressed together (``body``), and
    # what a graph reads beyond the columns (``graph_extra``).
    Column("detail", "blob", "NOT NULL"),
    Column("graph", "text", "NOT NULL"),
    Column("routing_key", "text", indexed=Index("tasks_routing_key")),
    # The celery beat schedule entry that sent the task (``store/beat.py``); partial: the
    # index holds the beat runs alone and serves the entry list, an entry's runs and the filter.
    # An entry is one schedule per source: two apps' beats both have ``celery.backend_cleanup``.
    Column("beat_entry", "text", indexed=Index("tasks_beat", partial=True, then=("source",))),
    # When an ETA/countdown task is due (epoch seconds, from the message's ``eta``).
    Column("eta", "float"),
    # The label of the event source the task came from (``--source NAME=…``, ``stamp_source``);
    # empty for the one unlabelled source, which the partial index leaves out.
    Column("source", "text", "NOT NULL DEFAULT ''", indexed=Index("tasks_source", where="source <> ''")),
)
TASK_COLUMN_NAMES = tuple(c.name for c in TASK_TABLE)
TASK_COLUMNS = ", ".join(TASK_COLUMN_NAMES)
TASK_TYPES = tuple(KINDS[c.kind][1] for c in TASK_TABLE)  # each column's PostgreSQL bind type
_POSITION = {name: i for i, name in enumerate(TASK_COLUMN_NAMES)}


def tasks_ddl(version: int = 1, table: Sequence[Column] = TASK_TABLE) -> list[str]:
    """The statements of schema ``version`` for the ``tasks`` table (dialect type slots unfilled):
    version 1 creates it with its columns, a later version adds the columns ``since`` it (its
    migration is ``";".join(tasks_ddl(N))``); each column with the index it leads."""
    columns = [c for c in table if c.since == version]
    if version == 1:
        body = ",\n".join(f"    {c.name} {KINDS[c.kind][0]} {c.constraint}".rstrip() for c in columns)
        out = [f"CREATE TABLE IF NOT EXISTS tasks (\n{body}\n)"]
    else:
        out = [
            f"ALTER TABLE tasks ADD COLUMN {c.name} {KINDS[c.kind][0]} {c.constraint}".rstrip()
            for c in columns
        ]
    for c in columns:
        if c.indexed is None:
            continue
        keys = dict.fromkeys((c.name, *c.indexed.then, "sort_ts") if c.indexed.listed else (c.name,))
        condition = c.indexed.where or (f"{c.name} IS NOT NULL" if c.indexed.partial else "")
        where = f" WHERE {condition}" if condition else ""
        out.append(f"CREATE INDEX IF NOT EXISTS {c.indexed.name} ON tasks ({', '.join(keys)}){where}")
    return out


def write_tasks(w: BatchWriter, rows: Sequence[Sequence[Any]]) -> None:
    """Insert or replace task rows (each in ``TASK_TABLE``'s order, as ``task_row`` builds them)."""
    # A row rewritten without its source (LOST marking, a salvage) keeps the one it has.
    updates = ", ".join(f"{c} = excluded.{c}" for c in TASK_COLUMN_NAMES[1:] if c != "source")
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
    log: bytes | None = None,
) -> list[Any]:
    """The task's row; ``extra`` (the ``args_repr``/``kwargs_repr`` seen) defaults to what
    ``events`` say, and is given with the stored event log (``log``, ``body.stored_log``) when
    a stored row is rewritten without its events."""
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
    return list(
        _in_table_order(
            {
                "id": record.id,
                "name": record.name,
                "state": record.state.value,
                "workflow_id": workflow_id,
                "parent_id": record.parent_id,
                "root_id": stored_root(record.id, record.root_id),
                "group_id": record.group_id,
                "worker": record.worker,
                "queue": record.queue,
                "retries": record.retries,
                "sort_ts": record.sent_at if record.sent_at is not None else first_seen,
                "sent_at": record.sent_at,
                "received_at": record.received_at,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "runtime_ms": record.runtime_ms,
                "exception_type": record.exception_type,
                "args_text": search.document(record, extra),
                "args_preview": text[:PREVIEW_MAX] or None,
                "updated_at": record.updated_at,
                "ingested_at": now,
                "detail": pack(
                    (record.id, record.root_id, record.parent_id, record.group_id),
                    encode(detail),
                    event_log(events) if log is None else log,
                ),
                "graph": compact_graph(encode(graph_extra(record))),
                "routing_key": record.routing_key,
                "beat_entry": record.beat_entry,
                "eta": record.eta_at,
                "source": "",  # the label of the event source, stamped by ``stamp_source``
            }
        )
    )


def stored_root(task_id: str, root_id: str | None) -> str | None:
    """The ``root_id`` column of a task: ``None`` (NULL) for its own id, which ``ROOT`` reads
    back, and ``''`` for none; 37 bytes less on three tasks in four."""
    if root_id == task_id:
        return None
    return "" if root_id is None else root_id


# The task's ``root_id`` from its stored row (``stored_root``), for a select.
ROOT = "NULLIF(COALESCE(root_id, id), '')"
# The ids a task's ``detail`` is packed with (``body.pack``), for a select: what reading it needs.
IDS = f"id, {ROOT}, parent_id, group_id"


def stored_ids(row: Sequence[Any]) -> tuple[Any, ...]:
    """The ids ``body`` reads a stored row's ``detail`` with, from the row (``TASK_COLUMNS``)."""
    task_id, root = row[0], row[_ROOT]
    return (task_id, task_id if root is None else root or None, row[_PARENT], row[_GROUP])


# Values by column name, in ``TASK_TABLE``'s order; a name the table lacks raises at once.
_in_table_order = itemgetter(*TASK_COLUMN_NAMES)


def _finite_runtimes(record: TaskRecord) -> bool:
    """False when a computed runtime overflowed (orjson would write ``null`` for it)."""
    runtime = record.runtime_ms
    if runtime is not None and runtime - runtime != 0.0:
        return False
    return all(a.runtime_ms is None or a.runtime_ms - a.runtime_ms == 0.0 for a in record.attempts)


def graph_extra(record: TaskRecord) -> list[Any]:
    """What a workflow graph reads from a record beyond the task columns (see ``read.skeleton``).

    Four items, ``[group_index, replaced_task_nesting, attempts, canvases]`` (stored without
    the keys that hold what an absent one means: ``compact_graph``); a task that ran
    more than once also gets a fifth, its attempts' spans, ``[number, state, worker,
    received_at, started_at, finished_at]`` each (a graph node of a task that ran once shows no
    spans). Nothing the graph does not read: the column is on every row, and its names and
    publisher id took ~30 bytes a task (docs/adr/0014-compact-storage.md, session 16).
    """
    attempts = record.attempts
    out: list[Any] = [
        record.group_index,
        record.replaced_task_nesting,
        len(attempts),
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


# What ``core.canvas`` reads as absent, as the compact JSON of a canvas spells it: a key holding
# ``None``, ``False`` or an empty list after another key, and a task signature's type before its
# id (``parse_sig`` takes a bare ``{"id", "name"}`` for a task). Inside a JSON string every quote
# is escaped, so ``,"`` and ``{"`` only occur where a key begins: these match keys alone.
_ABSENT = (
    (',"chord":null', ""),
    (',"callbacks":[]', ""),
    (',"errbacks":[]', ""),
    (',"truncated":false', ""),
    (',"group_index":null', ""),
    (',"tasks":[]', ""),
    (',"body":null', ""),
    ('{"type":"task","id":', '{"id":'),
)


def compact_graph(text: str) -> str:
    """The ``graph`` column's JSON without what its canvases hold as absent (``_ABSENT``): the
    members of a chord header each carry its canvas, and this halves it. Text replacements,
    not a walk of the canvas: ~1 us a task instead of ~10."""
    if "{" not in text:
        return text  # no canvas: most tasks
    for absent, kept in _ABSENT:
        text = text.replace(absent, kept)
    return text


_WORKFLOW, _INGESTED, _SOURCE = _POSITION["workflow_id"], _POSITION["ingested_at"], _POSITION["source"]
DETAIL = _POSITION["detail"]  # a stored row's record and event log (``body``)
_ROOT, _PARENT, _GROUP = _POSITION["root_id"], _POSITION["parent_id"], _POSITION["group_id"]
WORKFLOW = _WORKFLOW


def stamp_source(rows: Mapping[str, list[Any]], source: str) -> None:
    """Every row as from the event source labelled ``source`` (``--source NAME=…``)."""
    if source:
        for row in rows.values():
            row[_SOURCE] = source


def _final_row(planned: list[Any], workflow_id: str, now: float) -> list[Any]:
    """A planned task row (``plan_batch``), its workflow and ``ingested_at`` filled in."""
    planned[_WORKFLOW] = workflow_id
    planned[_INGESTED] = now
    return planned
