"""Applying one batch of events inside one transaction.

The effect must not depend on delivery order or on duplicates, so nothing here is
incremental: each task row keeps its events (under their ``(inst, seq)`` identity, a
duplicate kept once; ``body``), and every task a batch touches is re-folded
by ``core.task.fold_task`` from *all* of its events. Workflow membership is a union-find
kept in the ``aliases`` table: ids linked by an event share a workflow, and when two
workflows turn out to be one the oldest id survives and the others keep resolving to it.

A batch goes through three steps so that ingest can overlap them with its neighbours:
``plan_batch`` needs no database (it runs while the previous batch is still being written),
``BatchWriter.stage`` does every read and decision, and ``Staged.write`` only inserts rows
(on the store's commit thread).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stemtrace.core.events import LIBRARY_HEALTH, TASK_PUBLISHED, WORKER_EVENT_TYPES, Event, decode_event
from stemtrace.core.identity import UnionFind
from stemtrace.core.task import fold_task
from stemtrace.core.workers import WorkerRecord, fold_worker, worker_name
from stemtrace.server.jsonfast import loads
from stemtrace.server.store.base import ApplyResult, Changes
from stemtrace.server.store.body import load_events
from stemtrace.server.store.codec import chunks, dumps, marks
from stemtrace.server.store.db import Dialect
from stemtrace.server.store.narrow import split_rows, stored_rows, write_changed
from stemtrace.server.store.summary import roll_up
from stemtrace.server.store.task_row import (
    DETAIL,
    WORKFLOW,
    _final_row,
    stamp_source,
    stored_ids,
    task_row,
    write_tasks,
)


@dataclass(slots=True)
class Plan:
    """What a batch needs that no stored row can change, worked out ahead.

    Ingest builds it while the previous batch still commits: de-duplication, each task's
    events, which ids the batch links, and every task folded from the batch's events alone
    (its row with its events packed, ``body``).
    Most tasks of a steady stream are new, so their rows are final but for the workflow id
    and ``ingested_at``; a task stored before is folded again with its stored events.
    """

    unique: dict[tuple[str, int], Event]
    by_task: dict[str, list[Event]]  # each task's events, in batch order
    task_events: int  # how many of ``unique`` belong to a task (are kept in its row)
    worker_events: list[Event]
    health: list[Event]
    components: list[set[str]]  # linked ids, in the order of their first event
    first_ts: dict[str, float]  # each task's earliest event
    root_hint: dict[str, str]  # the last root_id stated for each task
    rows: dict[str, list[Any]]  # task rows from the batch alone (see ``_final_row``), for
    # the tasks whose ``task.published`` is in the batch (the others are folded in ``stage``)


def plan_batch(events: Sequence[Event]) -> Plan:
    unique: dict[tuple[str, int], Event] = {}
    for e in events:
        src = e.src
        unique[(src.inst, src.seq)] = e  # Event.key, without the property call
    by_task: dict[str, list[Event]] = {}
    task_events = 0
    worker_events = []
    health = []
    for e in unique.values():
        tid = e.task_id
        etype = e.type
        if tid is not None:
            found = by_task.get(tid)
            if found is None:
                by_task[tid] = [e]
            else:
                found.append(e)
            task_events += 1
        if etype in WORKER_EVENT_TYPES:
            worker_events.append(e)
        elif etype == LIBRARY_HEALTH:
            health.append(e)
    components, first_ts, root_hint = _link(by_task)
    rows = {}
    published = TASK_PUBLISHED
    for tid, evs in by_task.items():
        # A task whose message is not in the batch was most likely stored by an earlier
        # one (with a queue backlog, nearly every task's later events are): ``stage``
        # folds it once, with its stored events, instead of twice.
        for e in evs:
            if e.type == published:
                rows[tid] = task_row(fold_task(tid, evs), evs, "", first_ts[tid], 0.0)
                break
    return Plan(unique, by_task, task_events, worker_events, health, components, first_ts, root_hint, rows)


def _link(by_task: Mapping[str, list[Event]]) -> tuple[list[set[str]], dict[str, float], dict[str, str]]:
    """Every id the batch's events link, grouped by ``core.identity.UnionFind``: one component per
    workflow, in the order of its first task, with each task's first timestamp and the last
    ``root_id`` it states."""
    links = UnionFind()
    first_ts: dict[str, float] = {}
    root_hint: dict[str, str] = {}
    for tid, evs in by_task.items():
        links.add(tid)
        first_ts[tid] = min(e.ts for e in evs)
        for e in evs:
            root = e.data.get("root_id")
            if isinstance(root, str) and root:
                root_hint[tid] = root
            links.add_event(e)
    return list(links.groups().values()), first_ts, root_hint


@dataclass(slots=True)
class Staged:
    """A batch whose reads and decisions are done: ``write()`` runs its bulk inserts.

    The inserts are all that is left, so they can run on the commit thread while the
    ingest thread plans the next batch (see ``SqlStore.apply_begin``).
    """

    writer: BatchWriter
    plan: Plan
    alias_rows: list[tuple[str, str]]
    task_rows: list[Sequence[Any]]  # rows of tasks with no stored row: inserted whole
    changed_rows: dict[tuple[int, ...], list[Sequence[Any]]]  # stored rows, by the columns they change
    workflow_ids: list[str]  # rolled up once the task rows are written
    changes: Changes
    stored: int  # events new to the store (the task rows keep them)

    def write(self) -> int:
        """Insert the rows; returns how many events were new to the store."""
        w = self.writer
        w.d.insert_rows(
            w.conn,
            "INSERT INTO aliases (id, workflow_id)",
            ("text", "text"),
            self.alias_rows,
            tail="ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id",
        )
        write_tasks(w, self.task_rows)
        write_changed(w, self.changed_rows)
        roll_up(w, self.workflow_ids)
        return self.stored


class BatchWriter:
    """One batch, one connection already inside a write transaction."""

    def __init__(self, conn: Any, dialect: Dialect, now: float, source: str = "") -> None:
        self.conn = conn
        self.d = dialect
        self.now = now
        self.source = source  # the label of the event source the batch came from

    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(self.d.sql(text), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def many(self, text: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        cur = self.conn.cursor()
        cur.executemany(self.d.sql(text), rows)
        return max(int(cur.rowcount), 0)

    # -- entry points ---------------------------------------------------------------------------

    def apply(self, events: Sequence[Event], malformed: Mapping[str, int]) -> ApplyResult:
        staged = self.stage(plan_batch(events), malformed)
        return ApplyResult(stored=staged.write(), changes=staged.changes)

    def stage(self, plan: Plan, malformed: Mapping[str, int]) -> Staged:
        """Every read and every decision; the bulk inserts are left to ``Staged.write``."""
        self._count_malformed(malformed)
        self._health(plan.health)
        workers = self._workers(plan.worker_events)
        task_wf, merged, stored, _fresh, alias_rows = self._assign_workflows(plan)
        rows, repeated = self._fold_tasks(plan, task_wf, stored)
        whole, changed = split_rows(rows.values(), stored)
        touched_wf = set(task_wf.values())
        changes = Changes(
            tasks=frozenset(task_wf),
            workflows=frozenset(touched_wf | merged),
            workers=frozenset(workers),
            task_workflows=dict(task_wf),
        )
        new = plan.task_events - repeated
        return Staged(self, plan, alias_rows, whole, changed, sorted(touched_wf), changes, new)

    # -- counters -----------------------------------------------------------------------------

    def _count_malformed(self, malformed: Mapping[str, int]) -> None:
        self.many(
            "INSERT INTO malformed (kind, count) VALUES (?, ?) "
            "ON CONFLICT (kind) DO UPDATE SET count = malformed.count + excluded.count",
            [(k, n) for k, n in sorted(malformed.items()) if n],
        )

    def _health(self, events: list[Event]) -> None:
        latest: dict[str, Event] = {}
        for e in events:
            if e.src.inst not in latest or e.src.seq > latest[e.src.inst].src.seq:
                latest[e.src.inst] = e
        self.many(
            "INSERT INTO library_health (inst, host, pid, seq, ts, detail) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (inst) DO UPDATE SET host = excluded.host, pid = excluded.pid, seq = excluded.seq, "
            "ts = excluded.ts, detail = excluded.detail WHERE excluded.seq > library_health.seq",
            [
                (e.src.inst, e.src.host, e.src.pid, e.src.seq, e.ts, dumps({**e.data, "proc": e.src.proc}))
                for e in latest.values()
            ],
        )

    def _workers(self, events: list[Event]) -> set[str]:
        by_name: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            name = worker_name(e)
            if name:
                by_name[name].append(e)
        if not by_name:
            return set()
        names = sorted(by_name)
        current: dict[str, WorkerRecord] = {}
        for part in chunks(names):
            for hostname, detail in self.q(
                f"SELECT hostname, detail FROM workers WHERE hostname IN ({marks(len(part))})", part
            ):
                current[hostname] = WorkerRecord.from_dict(loads(detail))
        rows = []
        for name in names:
            rec: WorkerRecord | None = current.get(name)
            for e in sorted(by_name[name], key=lambda ev: ev.ts):
                rec = fold_worker(rec, e)
            if rec is not None:
                rows.append((name, rec.last_seen, rec.shut_down, self.now, dumps(rec.to_dict()), self.source))
        self.many(
            "INSERT INTO workers (hostname, last_seen, offline, ingested_at, detail, source) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (hostname) DO UPDATE SET last_seen = excluded.last_seen, offline = excluded.offline, "  # noqa: E501
            "ingested_at = excluded.ingested_at, detail = excluded.detail, source = excluded.source",
            rows,
        )
        return set(names)

    # -- workflow membership (union-find) ------------------------------------------------------

    def _assign_workflows(
        self, plan: Plan
    ) -> tuple[dict[str, str], set[str], dict[str, tuple[Any, ...]], set[str], list[tuple[str, str]]]:
        """Returns each task's workflow, the workflows merged away, the stored rows of the
        batch's ids that have one, the workflows this batch creates (none of their ids was
        known) and the alias rows to write.

        An id with a task row is in the workflow the row names; ``aliases`` holds the others
        (group ids, the steps a canvas plans), so a task's membership is stored once.
        """
        first_ts = plan.first_ts
        all_ids = sorted({m for members in plan.components for m in members})
        existing: dict[str, str] = {}
        for part in chunks(all_ids):
            existing.update(
                self.q(f"SELECT id, workflow_id FROM aliases WHERE id IN ({marks(len(part))})", part)
            )
        stored = stored_rows(self, all_ids)
        for tid, row in stored.items():
            existing[tid] = row[WORKFLOW]
        plans: list[tuple[set[str], set[str], str | None]] = []
        for members in plan.components:
            found = {existing[m] for m in members if m in existing}
            new_id = None if found else self._new_workflow_id(members, first_ts, plan.root_hint)
            plans.append((members, found, new_id))
        # New ids are looked up too: one that somehow has a workflow row already is rolled
        # up from the database like any existing workflow, never from this batch alone.
        new_ids = {keep for _, _, keep in plans if keep is not None}
        wf_age: dict[str, float] = {}
        for part in chunks(sorted(set(existing.values()) | new_ids)):
            wf_age.update(self.q(f"SELECT id, sort_ts FROM workflows WHERE id IN ({marks(len(part))})", part))
        fresh = {keep for keep in new_ids if keep not in wf_age}
        task_wf: dict[str, str] = {}
        merged: set[str] = set()
        alias_rows: list[tuple[str, str]] = []
        for members, found, new_id in plans:
            if new_id is None:
                keep = min(found, key=lambda w: (wf_age.get(w, float("inf")), w))
                others = sorted(found - {keep})
                if others:
                    self._merge(keep, others)
                    merged.update(others)
            else:
                keep = new_id
            # The batch's tasks have their row (written with ``keep``) for an alias.
            alias_rows.extend(
                (m, keep) for m in sorted(members) if m not in first_ts and existing.get(m) != keep
            )
            for m in members:
                if m in first_ts:
                    task_wf[m] = keep
        return task_wf, merged, stored, fresh, alias_rows

    @staticmethod
    def _new_workflow_id(members: set[str], first_ts: dict[str, float], hints: dict[str, str]) -> str:
        roots = sorted({hints[m] for m in members if m in hints} & members)
        if roots:
            return roots[0]
        return min((m for m in members if m in first_ts), key=lambda m: (first_ts[m], m))

    def _merge(self, keep: str, others: Sequence[str]) -> None:
        ph = marks(len(others))
        self.q(f"UPDATE aliases SET workflow_id = ? WHERE workflow_id IN ({ph})", [keep, *others])
        self.q(f"UPDATE tasks SET workflow_id = ? WHERE workflow_id IN ({ph})", [keep, *others])
        self.q(f"DELETE FROM workflows WHERE id IN ({ph})", list(others))

    # -- tasks ------------------------------------------------------------------------------------

    def _fold_tasks(
        self, plan: Plan, task_wf: Mapping[str, str], stored: Mapping[str, tuple[Any, ...]]
    ) -> tuple[dict[str, list[Any]], int]:
        """Every task row the batch writes, by id, in id order, and how many of the batch's
        events the ``stored`` rows already keep (a redelivery: not stored again).

        Only tasks stored before have earlier events, in their row; in a steady stream most
        tasks are new and their planned rows stand.
        """
        by_task = plan.by_task
        ids = sorted(task_wf)
        grown: set[str] = set()
        repeated = 0
        for tid, old in stored.items():
            if tid not in by_task:
                continue  # an id the batch only names (a parent, a canvas step)
            evs = by_task[tid]
            mine = {e.key for e in evs}
            for raw in load_events(stored_ids(old), old[DETAIL]):
                src = raw["src"]
                if (src["inst"], src["seq"]) in mine:
                    repeated += 1
                else:
                    evs.append(decode_event(raw))
                    grown.add(tid)
        now = self.now
        rows: dict[str, list[Any]] = {}
        planned = plan.rows
        for tid in ids:
            if tid in grown:
                evs = by_task[tid]
                first_seen = evs[0].ts
                for e in evs:
                    first_seen = min(first_seen, e.ts)
                row = task_row(fold_task(tid, evs), evs, task_wf[tid], first_seen, now)
            elif tid in planned:
                row = _final_row(planned[tid], task_wf[tid], now)
            else:  # not folded ahead (see ``plan_batch``), and nothing stored to add
                evs = by_task[tid]
                row = task_row(fold_task(tid, evs), evs, task_wf[tid], plan.first_ts[tid], now)
            rows[tid] = row
        stamp_source(rows, self.source)
        return rows, repeated

    # -- workflows -------------------------------------------------------------------------------
