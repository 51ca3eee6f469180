"""The Workflows list's rows: each workflow rolled up exactly as its page rolls it up.

The page builds the whole graph (``core.workflow.build_workflow``); a list row is
written at ingest for every workflow a batch touches, where building a 100,000-task
graph per batch is out of the question. Both sides end in the same core functions
(``core.rollup.summarize`` and ``root_order``) and feed them the same tasks:

* per-state counts of every task but Celery's plumbing, aggregated in SQL;
* the steps known only from a canvas (``PLANNED``/``SKIPPED``), from
  ``core.workflow.structure`` over the few records that can add one: those that carry
  a canvas or are plumbing, and those their canvases mention;
* the root (which names the workflow): the first task in send order that no parent in
  the workflow and no designed step leads to, plumbing excluded;
* the event source (``--source NAME``): a workflow's tasks are one app's, so they share one
  (the greatest label among them, should a workflow id ever span two sources).

It runs after the batch's task rows are written, in the same transaction, so it reads
one consistent store.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from stemtrace.core.model import GraphRecord
from stemtrace.core.planning import BLOCKING
from stemtrace.core.rollup import Summary, is_scheduled, scheduled_for, summarize
from stemtrace.core.shape import GroupShape, chain_steps, shape_name
from stemtrace.core.states import FINAL_STATES, TaskState, WorkflowState
from stemtrace.core.workflow import Structure, needs_structure, structure, structure_ids
from stemtrace.server.jsonfast import fast_dumps
from stemtrace.server.store.codec import NOT_PLUMBING, chunks, marks
from stemtrace.server.store.workflow_root import find_root, find_roots, parts

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

# Plumbing names are constants of core (no quotes in them), written into the SQL.
_NO_STRUCTURE = Structure((), frozenset())
_NO_INDEX = "[null,%"  # a ``graph`` whose group_index is null: not a group member (``fanout``)


class Db(Protocol):
    """A connection's query helper (``write.BatchWriter``, ``read.Reader``)."""

    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Writer(Db, Protocol):
    """What the roll-up needs of ``write.BatchWriter``."""

    now: float


def summary_rows(
    w: Writer, workflow_ids: Sequence[str], settle_at: float | None = None
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The summary rows of these workflows, and the ones with no task left (to delete).

    ``settle_at``: the server found these workflows quiet at that time (``never_sent.py``);
    otherwise each keeps the moment found before, as long as it still holds (see ``_over``).
    """
    rows: list[tuple[Any, ...]] = []
    gone: list[str] = []
    for part in parts(sorted(set(workflow_ids))):
        stats = _aggregates(w, part)
        markers = dict.fromkeys(part, settle_at) if settle_at is not None else _markers(w, part)
        settled = {wf: at for wf, at in markers.items() if at is not None and _over(stats.get(wf), at)}
        records = structural_records(w, part)
        shapes = {wf: structure(wf, found, settled.get(wf)) for wf, found in records.items() if found}
        roots = find_roots(w, [wf for wf in part if wf in stats], shapes)
        for wf in part:
            agg = stats.get(wf)
            if agg is None:
                gone.append(wf)
                continue
            shape = shapes.get(wf, _NO_STRUCTURE)
            counts: Counter[str] = Counter(agg["counts"])
            counts.update(n.state.value for n in shape.planned)
            summary = _summarize(counts, shape.never_sent, shape.not_needed)
            root_id, name = roots.get(wf) or find_root(w, wf, shape)
            finished = agg["finished"] if summary.state is not WorkflowState.RUNNING else None
            due = scheduled_for(summary.counts, agg["scheduled"], agg["next_eta"])
            named = _shape(shape, agg["groups"], root_id)
            rows.append(
                (
                    wf,
                    name,
                    root_id or wf,
                    summary.state.value,
                    summary.task_count,
                    json.dumps(summary.counts, separators=(",", ":")),
                    agg["first"],
                    agg["started"],
                    finished,
                    summary.has_failure,
                    agg["updated"],
                    w.now,
                    due,
                    named,
                    settled.get(wf) if shape.never_sent else None,
                    agg["source"],
                )
            )
    return rows, gone


def _markers(w: Db, part: Sequence[str]) -> dict[str, float]:
    """The moment each workflow was found over with steps never sent, where one was."""
    return {
        wf: float(at)
        for wf, at in w.q(
            f"SELECT id, settled_at FROM workflows WHERE id IN ({marks(len(part))}) "
            "AND settled_at IS NOT NULL",
            list(part),
        )
    }


def _over(agg: dict[str, Any] | None, settled_at: float) -> bool:
    """A workflow found quiet at ``settled_at`` still is: nothing of it was stored since
    (server time, ``tasks.ingested_at``) and every counted task is final. Checked on the
    counts of *all* its tasks, as ``core.workflow.structure`` sees only some of them."""
    if agg is None or (agg["ingested"] is not None and agg["ingested"] > settled_at):
        return False
    return all(n <= 0 or TaskState(state) in FINAL_STATES for state, n in agg["counts"].items())


def _aggregates(w: Writer, part: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per workflow: counts by state of its counted tasks, and its times.

    ``sort_ts`` and ``updated_at`` span every task (plumbing too: it is activity); the
    counts and the start/finish of the work leave plumbing out, as the page does. The
    scheduled tasks (``core.rollup.is_scheduled``) and their earliest ETA feed
    ``scheduled_for``, as the page's nodes do.
    """
    out: dict[str, dict[str, Any]] = {}
    member = "group_id IS NOT NULL AND graph IS NOT NULL AND graph NOT LIKE ?"  # fanout._MEMBER
    for (
        wf,
        state,
        plumbing,
        group,
        name,
        n,
        started,
        finished,
        first,
        updated,
        with_eta,
        next_eta,
        ingested,
        source,
    ) in w.q(
        f"SELECT workflow_id, state, CASE WHEN {NOT_PLUMBING} THEN 0 ELSE 1 END, "
        f"CASE WHEN {member} THEN group_id END, CASE WHEN {member} THEN COALESCE(name, '') END, COUNT(*), "
        "MIN(COALESCE(started_at, received_at, sent_at)), MAX(finished_at), MIN(sort_ts), MAX(updated_at), "
        "COUNT(eta), MIN(eta), MAX(ingested_at), MAX(source) "
        f"FROM tasks WHERE workflow_id IN ({marks(len(part))}) "
        "GROUP BY 1, 2, 3, 4, 5",
        [_NO_INDEX, _NO_INDEX, *part],
    ):
        agg = out.get(wf)
        if agg is None:
            agg = out[wf] = {
                "counts": {},
                "started": None,
                "finished": None,
                "first": None,
                "updated": None,
                "scheduled": 0,
                "next_eta": None,
                "groups": {},
                "ingested": None,
                "source": "",
            }
        agg["first"] = _min(agg["first"], first)
        agg["updated"] = _max(agg["updated"], updated)
        agg["ingested"] = _max(agg["ingested"], ingested)
        agg["source"] = max(agg["source"], source or "")
        if plumbing:
            continue
        agg["counts"][state] = agg["counts"].get(state, 0) + int(n)
        agg["started"] = _min(agg["started"], started)
        agg["finished"] = _max(agg["finished"], finished)
        if group is not None:
            members = agg["groups"].setdefault(group, Counter())
            members[name or ""] += int(n)
        if with_eta and is_scheduled(state, next_eta):
            agg["scheduled"] += int(with_eta)
            agg["next_eta"] = _min(agg["next_eta"], next_eta)
    return out


def structural_records(w: Db, part: Sequence[str]) -> dict[str, list[GraphRecord]]:
    """Per workflow, the records ``core.workflow.structure`` needs (see its docstring).

    A record's canvases sit in its ``graph`` column, JSON in which only a canvas writes a
    ``{``; a name holding one only costs a record read for nothing.
    """
    from stemtrace.server.store.read import SKELETON_COLUMNS  # here: read imports write, which imports this

    out: dict[str, list[GraphRecord]] = {}
    seen: dict[tuple[str, str], int] = {}  # (workflow, canvases) -> where the one kept is
    for row in w.q(
        f"SELECT {SKELETON_COLUMNS}, workflow_id FROM tasks WHERE workflow_id IN ({marks(len(part))}) "
        f"AND (graph LIKE ? OR NOT {NOT_PLUMBING})",
        [*part, "%{%"],
    ):
        wf = row[-1]
        record = _record(row)
        if not needs_structure(record):
            continue
        if record.canvases and not _decides(record.state):
            # The members of a big chord header all carry the same canvas: one of them says
            # every planned step and designed edge the others say. Only a member that stops
            # (or succeeds before an error callback) adds something of its own.
            key = _canvas_key(record)
            kept = seen.get((wf, key))
            if kept is not None and '"errbacks":[{' not in key:
                # The one that finished last stays: it names a callback never sent
                # (``core.planning.settle_never_sent``), as the full graph does.
                found = out[wf]
                if _last_finished(record) > _last_finished(found[kept]):
                    found[kept] = record
                continue
            seen[(wf, key)] = len(out.get(wf, ()))
        out.setdefault(wf, []).append(record)
    for wf, found in out.items():
        have = {r.id for r in found}
        wanted = sorted({i for r in found for i in structure_ids(r)} - have)
        for ids in parts(wanted, 500):
            for row in w.q(
                f"SELECT {SKELETON_COLUMNS}, workflow_id FROM tasks WHERE id IN ({marks(len(ids))})",
                list(ids),
            ):
                if row[-1] == wf:
                    found.append(_record(row))
    return out


def _shape(shape: Structure, groups: dict[str, Counter[str]], root_id: str | None) -> str | None:
    """The workflow's shape name (``core.shape``): its groups' members counted in SQL, which of
    them are chords and the chain from the root known from the designed part (``shape``)."""
    chords = shape.chords
    found = [GroupShape(gid, members, gid in chords, chords.get(gid)) for gid, members in groups.items()]
    return shape_name(found, [shape.names.get(i) for i in chain_steps(root_id, shape.links)])


def _last_finished(record: GraphRecord) -> tuple[float, bool, float, str]:
    """``core.planning``'s order for the task that would have sent a step: latest finish,
    then send order."""
    stamp = record.sent_at if record.sent_at is not None else record.started_at
    return (record.finished_at or 0.0, stamp is None, stamp or 0.0, record.id)


def _canvas_key(record: GraphRecord) -> str:
    """The canvases' text, equal for equal canvases (orjson's, ``json``'s when it cannot)."""
    canvases = list(record.canvases)
    return fast_dumps(canvases) or json.dumps(canvases, separators=(",", ":"), default=repr)


def _decides(state: TaskState) -> bool:
    """A state that makes the steps after a task SKIPPED (``core.planning.BLOCKING``)."""
    return state in BLOCKING


def _record(row: tuple[Any, ...]) -> GraphRecord:
    from stemtrace.server.store.read import skeleton_of  # here: read imports write, which imports this

    return skeleton_of(row)


_SUMMARIES: dict[tuple[int, int, tuple[tuple[str, int], ...]], Summary] = {}


def _summarize(counts: Counter[str], never_sent: int = 0, not_needed: int = 0) -> Summary:
    """``summarize``, remembered: most workflows share a handful of count shapes."""
    key = (never_sent, not_needed, tuple(sorted(counts.items())))
    found = _SUMMARIES.get(key)
    if found is None:
        if len(_SUMMARIES) >= 4096:
            _SUMMARIES.clear()
        found = _SUMMARIES[key] = summarize(counts, never_sent, not_needed)
    return found


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def roll_up(w: BatchWriter, workflow_ids: Sequence[str], settle_at: float | None = None) -> None:
    """Rewrite the summary rows of these workflows from their stored tasks (``summary``):
    after a batch's task rows are written, and wherever tasks change outside ingest.
    ``settle_at``: see :func:`summary_rows`."""
    rows, gone = summary_rows(w, workflow_ids, settle_at)
    for part in chunks(gone):
        w.q(f"DELETE FROM workflows WHERE id IN ({marks(len(part))})", list(part))
    _write_workflows(w, rows)


# The PostgreSQL type of each bound column of ``_write_workflows`` (``Dialect.insert_rows``).
_WF_TYPES = (
    *("text",) * 4,  # id, name, root_id, state
    "integer",  # task_count
    "text",  # counts
    *("float8",) * 3,  # sort_ts, started_at, finished_at
    "boolean",  # has_failure
    *("float8",) * 3,  # updated_at, ingested_at, scheduled_for
    "text",  # shape
    "float8",  # settled_at
    "text",  # source
)


def _write_workflows(w: BatchWriter, rows: list[tuple[Any, ...]]) -> None:
    w.d.insert_rows(
        w.conn,
        "INSERT INTO workflows (id, name, root_id, state, task_count, counts, sort_ts, started_at, finished_at, "  # noqa: E501
        "has_failure, updated_at, ingested_at, scheduled_for, shape, settled_at, source, version)",
        _WF_TYPES,
        rows,
        constants=", 1",
        tail="ON CONFLICT (id) DO UPDATE SET version = workflows.version + 1, name = excluded.name, "
        "root_id = excluded.root_id, state = excluded.state, "
        "task_count = excluded.task_count, counts = excluded.counts, sort_ts = excluded.sort_ts, "
        "started_at = excluded.started_at, finished_at = excluded.finished_at, has_failure = excluded.has_failure, "  # noqa: E501
        "updated_at = excluded.updated_at, ingested_at = excluded.ingested_at, "
        "scheduled_for = excluded.scheduled_for, shape = excluded.shape, settled_at = excluded.settled_at, "
        "source = excluded.source",
    )
