"""The queries behind the API: keyset-paginated lists, details and aggregates.

Every list is newest first on ``(sort_ts, id)`` and continues strictly below the
cursor, so rows inserted while a client pages never shift or repeat a page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any, NamedTuple

from stemtrace.core.model import Attempt, GraphRecord, TaskRecord
from stemtrace.core.states import FAILED_STATES, TaskState
from stemtrace.core.workflow import structure
from stemtrace.server.store import search_plan
from stemtrace.server.store.base import (
    Changes,
    ChildRow,
    Page,
    TaskDetail,
    TaskQuery,
    TaskRow,
    WorkflowQuery,
    WorkflowRow,
    decode_cursor,
    encode_cursor,
)
from stemtrace.server.store.body import load_events, load_record
from stemtrace.server.store.codec import marks
from stemtrace.server.store.db import Dialect
from stemtrace.server.store.summary import structural_records
from stemtrace.server.store.task_row import IDS, ROOT

# Each select names the fields of the row it fills, in their order: ``TaskRow(*row)`` then
# matches by construction.
# ``root_id`` is stored NULL for a task that is its own root (``task_row.stored_root``).
ROW_COLUMNS = ", ".join(ROOT if f.name == "root_id" else f.name for f in fields(TaskRow))
_WF_FIELDS = tuple(f.name for f in fields(WorkflowRow))
WF_COLUMNS = ", ".join(_WF_FIELDS)
# Only what ``core.workflow.build_workflow`` reads: every column costs ~10 ms on a 10,000-task
# graph. ``skeleton`` unpacks the fields in this order, then reads ``graph`` and ``eta`` by name.
SKELETON_FIELDS = (
    "id, name, state, parent_id, group_id, worker, queue, sent_at, received_at, started_at, finished_at, "
    "runtime_ms, exception_type"
)
_SKELETON_NAMES = (*SKELETON_FIELDS.split(", "), "graph", "eta")
SKELETON_COLUMNS = ", ".join(_SKELETON_NAMES)
_GRAPH, _ETA = _SKELETON_NAMES.index("graph"), _SKELETON_NAMES.index("eta")
# A task detail lists every child id but names and states only this many (a fan-out parent can
# have hundreds of thousands of children; the workflow graph is the place to browse those).
CHILD_TASKS_MAX = 1_000
_PLACEHOLDERS: dict[tuple[int, TaskState], tuple[Attempt, ...]] = {}
FAILED_VALUES = tuple(sorted(s.value for s in FAILED_STATES))
_STATES = {s.value: s for s in TaskState}


class Reader:
    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.d = dialect

    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self.d.sql(text), tuple(params)).fetchall())

    # -- tasks ----------------------------------------------------------------------------------

    def list_tasks(self, query: TaskQuery) -> Page:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("name", query.name),
            ("worker", query.worker),
            ("queue", query.queue),
            ("routing_key", query.routing_key),
            ("group_id", query.group),
            ("parent_id", query.parent),
            ("beat_entry", query.beat),
            ("source", query.source),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.source:  # lets both engines use the partial index tasks_source
            where.append("source <> ''")
        if query.workflow is not None:
            where.append("workflow_id = ?")
            params.append(self.resolve_workflow(query.workflow) or query.workflow)
        if query.states:
            where.append(f"state IN ({marks(len(query.states))})")
            params.extend(s.value for s in query.states)
        if query.exception_types:
            # Served by the partial index tasks_exception (``task_row.TASK_TABLE``).
            where.append(f"exception_type IN ({marks(len(query.exception_types))})")
            params.extend(query.exception_types)
        time_range(where, params, query.since, query.until)
        if query.q:
            return self._search(query, where, params)
        rows = self._page(f"SELECT {ROW_COLUMNS} FROM tasks", where, params, query.cursor, query.limit)
        items = [TaskRow(*r) for r in rows[: query.limit]]
        nxt = encode_cursor(items[-1].sort_ts, items[-1].id) if len(rows) > query.limit else None
        return Page(items, nxt)

    def _search(self, query: TaskQuery, where: list[str], params: list[Any]) -> Page:
        """``q``: the id-prefix range and the full-text index, merged newest first (``store/search.py``)."""
        return search_plan.find(self, ROW_COLUMNS, query, where, params)

    @staticmethod
    def _below(where: list[str], params: list[Any], cursor: str | None) -> tuple[list[str], list[Any]]:
        if not cursor:
            return where, params
        ts, key = decode_cursor(cursor)
        # ``sort_ts <= ?`` alone bounds the index range; the OR breaks ties on id.
        return [*where, "sort_ts <= ?", "(sort_ts < ? OR (sort_ts = ? AND id < ?))"], [
            *params,
            ts,
            ts,
            ts,
            key,
        ]

    def _page(
        self, select: str, where: list[str], params: list[Any], cursor: str | None, limit: int
    ) -> list[Any]:
        where, params = self._below(where, params, cursor)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self.q(f"{select}{clause} ORDER BY sort_ts DESC, id DESC LIMIT ?", [*params, limit + 1])

    def get_task(self, task_id: str) -> TaskDetail | None:
        found = self.q(f"SELECT {ROW_COLUMNS}, detail FROM tasks WHERE id = ?", [task_id])
        if not found:
            return self._planned_task(task_id)
        row = TaskRow(*found[0][:-1])
        ids = (row.id, row.root_id, row.parent_id, row.group_id)
        detail = load_record(ids, found[0][-1])
        extra = detail.pop("_extra", {}) or {}
        events = load_events(ids, found[0][-1])
        found_children = self.q(
            "SELECT id, name, state FROM tasks WHERE parent_id = ? ORDER BY sort_ts, id", [task_id]
        )
        return TaskDetail(
            row=row,
            record=TaskRecord.from_dict(detail),
            extra=extra,
            events=events,
            children=[c[0] for c in found_children],
            child_tasks=[ChildRow(*c) for c in found_children[:CHILD_TASKS_MAX]],
        )

    def _planned_task(self, task_id: str) -> TaskDetail | None:
        """A step known only from an embedded canvas (``PLANNED``, or ``SKIPPED`` and why).

        Its id is in ``aliases`` (every id a canvas names without a task row is), so it resolves
        to its workflow; the workflow's designed part (``summary.structural_records``) says what it is, as the
        graph draws it. The reason and the deciding task travel in ``extra``.
        """
        workflow_id = self.resolve_workflow(task_id)
        if workflow_id is None:
            return None
        records = structural_records(self, [workflow_id]).get(workflow_id)
        if not records:
            return None
        settled = self.q("SELECT settled_at FROM workflows WHERE id = ?", [workflow_id])
        shape = structure(workflow_id, records, settled[0][0] if settled else None)
        node = next((n for n in shape.planned if n.id == task_id), None)
        if node is None:
            return None  # a group id, or an id the design does not name as a task
        row = TaskRow(
            id=node.id,
            name=node.name,
            state=node.state.value,
            workflow_id=workflow_id,
            parent_id=None,
            root_id=None,
            group_id=node.group_id,
            worker=None,
            queue=None,
            retries=0,
            sent_at=None,
            received_at=None,
            started_at=None,
            finished_at=None,
            runtime_ms=None,
            exception_type=None,
            args_preview=None,
            routing_key=None,
            eta=None,
            source="",
            sort_ts=0.0,
        )
        record = TaskRecord(id=node.id, name=node.name, state=node.state, group_id=node.group_id)
        if node.group_index is not None:
            record = replace(record, group_index=node.group_index)
        extra = {"skipped_reason": node.skipped_reason, "skipped_by": node.skipped_by}
        return TaskDetail(row=row, record=record, extra=extra, events=[], children=[], child_tasks=[])

    def stale_tasks(
        self, states: list[TaskState], older_than: float, limit: int, source: str | None = None
    ) -> list[TaskRow]:
        """Per state, up to ``limit`` tasks unchanged since ``older_than``, first sent first: a range
        of the (state, sort_ts) index that stops at ``limit``. By ``updated_at``, the engine read
        and sorted every task in the state, and a backlog is when the attention view is opened."""
        scoped = " AND source = ?" if source is not None else ""
        out: list[TaskRow] = []
        for state in states:
            rows = self.q(
                f"SELECT {ROW_COLUMNS} FROM tasks WHERE state = ? AND updated_at < ?{scoped} "
                "ORDER BY sort_ts LIMIT ?",
                [state.value, older_than, *([source] if source is not None else []), limit],
            )
            out.extend(TaskRow(*r) for r in rows)
        return out

    def changes_since(self, after: float) -> tuple[Changes, float]:
        """What was written after ``after`` (``ingested_at``), and the latest such time: the live
        stream's next cursor."""
        tasks = self.q(
            "SELECT id, ingested_at, workflow_id FROM tasks WHERE ingested_at > ? ORDER BY ingested_at "
            "LIMIT 5000",
            [after],
        )
        wfs = self.q("SELECT id, ingested_at FROM workflows WHERE ingested_at > ? LIMIT 5000", [after])
        workers = self.q("SELECT hostname, ingested_at FROM workers WHERE ingested_at > ?", [after])
        latest = max(
            [
                after,
                *(float(t) for _, t, _ in tasks),
                *(float(t) for _, t in wfs),
                *(float(t) for _, t in workers),
            ]
        )
        changes = Changes(
            tasks=frozenset(i for i, _, _ in tasks),
            workflows=frozenset(i for i, _ in wfs),
            workers=frozenset(i for i, _ in workers),
            task_workflows={i: w for i, _, w in tasks if w},
        )
        return changes, latest

    # -- workflows --------------------------------------------------------------------------------

    def resolve_workflow(self, any_id: str) -> str | None:
        # A task's row names its workflow; ``aliases`` the other ids a workflow's events link.
        found = self.q("SELECT workflow_id FROM tasks WHERE id = ?", [any_id])
        if not found:
            found = self.q("SELECT workflow_id FROM aliases WHERE id = ?", [any_id])
        if found:
            return str(found[0][0])
        found = self.q("SELECT id FROM workflows WHERE id = ?", [any_id])
        return str(found[0][0]) if found else None

    def workflow_records(self, workflow_id: str) -> list[TaskRecord]:
        out = []
        for *ids, detail in self.q(f"SELECT {IDS}, detail FROM tasks WHERE workflow_id = ?", [workflow_id]):
            raw = load_record(ids, detail)
            raw.pop("_extra", None)
            out.append(TaskRecord.from_dict(raw))
        return out

    def workflow_skeletons(self, workflow_id: str) -> list[GraphRecord]:
        return skeletons(self.q(f"SELECT {SKELETON_COLUMNS} FROM tasks WHERE workflow_id = ?", [workflow_id]))

    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        found = self.q(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", [workflow_id])
        return _wf_row(found[0]) if found else None

    def list_workflows(self, query: WorkflowQuery) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if query.name is not None:
            where.append("name = ?")
            params.append(query.name)
        if query.source is not None:
            where.append("source = ?")
            params.append(query.source)
            if query.source:  # lets both engines use the partial index workflows_source
                where.append("source <> ''")
        if query.states:
            where.append(f"state IN ({marks(len(query.states))})")
            params.extend(s.value for s in query.states)
        time_range(where, params, query.since, query.until)
        rows = self._page(f"SELECT {WF_COLUMNS} FROM workflows", where, params, query.cursor, query.limit)
        items = [_wf_row(r) for r in rows[: query.limit]]
        nxt = encode_cursor(items[-1].sort_ts, items[-1].id) if len(rows) > query.limit else None
        return Page(items, nxt)


class Skeleton(NamedTuple):
    """A task as the workflow graph reads it (``core.model.GraphRecord``), from one skeleton row.

    A tuple, not a 31-field ``TaskRecord``: a 10,000-task graph builds 10,000 of these.
    """

    id: str
    name: str | None
    state: TaskState
    parent_id: str | None
    group_id: str | None
    worker: str | None
    queue: str | None
    sent_at: float | None
    received_at: float | None
    started_at: float | None
    finished_at: float | None
    runtime_ms: float | None
    exception_type: str | None
    group_index: int | None
    replaced_task_nesting: int
    canvases: Sequence[Mapping[str, Any]]
    attempts: tuple[Attempt, ...]
    args: Any = None  # never stored in ``graph``; the graph reads it of chord_unlock only
    eta_at: float | None = None  # the ``eta`` column


def skeletons(rows: Sequence[Sequence[Any]]) -> list[GraphRecord]:
    """The graph's records from rows of ``SKELETON_COLUMNS``."""
    # One ``json.loads`` for every ``graph`` value: per-row calls cost more than the parsing.
    extras = json.loads(f"[{','.join([row[_GRAPH] for row in rows])}]")
    return [skeleton(row, extra) for row, extra in zip(rows, extras, strict=True)]


def skeleton_of(row: Sequence[Any]) -> Skeleton:
    """A task from one row of ``SKELETON_COLUMNS`` (and any columns after them)."""
    return skeleton(row, json.loads(row[_GRAPH]))


def skeleton(row: Sequence[Any], extra: list[Any]) -> Skeleton:
    """A task from ``SKELETON_FIELDS`` (the row's first columns) and its decoded ``graph``
    (``task_row.graph_extra``): what the graph reads.

    Attempts are placeholders (number and the task's state) unless the row kept their spans
    (a task that ran more than once).
    """
    tid, name, state, parent, group, worker, queue, sent, received, started, finished, runtime, exc = row[:13]
    group_index, nesting, n_attempts, canvases = extra[:4]
    task_state = _STATES.get(state) or TaskState(state)
    if len(extra) > 4:
        attempts = tuple(
            Attempt(
                number=number,
                state=_STATES.get(st) or TaskState(st),
                worker=a_worker,
                received_at=a_received,
                started_at=a_started,
                finished_at=a_finished,
            )
            for number, st, a_worker, a_received, a_started, a_finished in extra[4]
        )
    else:
        attempts = _placeholders(int(n_attempts), task_state)
    return Skeleton(
        tid,
        name,
        task_state,
        parent,
        group,
        worker,
        queue,
        sent,
        received,
        started,
        finished,
        runtime,
        exc,
        group_index,
        int(nesting),
        canvases,
        attempts,
        None,
        row[_ETA],
    )


def _placeholders(n: int, state: TaskState) -> tuple[Attempt, ...]:
    """``n`` attempts that know only their number and the task's state (shared, immutable)."""
    attempts = _PLACEHOLDERS.get((n, state))
    if attempts is None:
        attempts = tuple(Attempt(number=i, state=state) for i in range(1, n + 1))
        if len(_PLACEHOLDERS) < 1000:
            _PLACEHOLDERS[(n, state)] = attempts
    return attempts


def time_range(where: list[str], params: list[Any], since: float | None, until: float | None) -> None:
    if since is not None:
        where.append("sort_ts >= ?")
        params.append(since)
    if until is not None:
        where.append("sort_ts < ?")
        params.append(until)


def _wf_row(r: Sequence[Any]) -> WorkflowRow:
    """A ``WorkflowRow`` from a row of ``WF_COLUMNS``, its stored types made the row's own."""
    row = dict(zip(_WF_FIELDS, r, strict=True))
    return WorkflowRow(
        **{
            **row,
            "task_count": int(row["task_count"]),
            "counts": json.loads(row["counts"]),
            "has_failure": bool(row["has_failure"]),
            "sort_ts": float(row["sort_ts"]),
            "version": int(row["version"]),
        }
    )
