"""Roll-ups maintained at ingest: what the aggregate endpoints and ``/metrics`` read.

Every task row write (``task_row.write_tasks``: ingest's batches and ``mark_lost``) calls
:func:`apply` first, in the same transaction. It reads the rows' stored columns *before* the
write, and adds to the roll-up tables the difference between what each task contributes
after the write and what it contributed before. So a task is counted once however its
events arrive: a duplicate or replayed event folds to the same row (no difference), an
out-of-order event moves the task from one outcome to another (one minus, one plus), and a
retry's new attempt changes ``retries`` (the difference is the retries added). Nothing here
looks at raw events, and nothing on a request path scans ``tasks``.

What a task contributes is a function of a few of its columns (:func:`contribution`), keyed
by task name, queue, the hour of its ``sort_ts`` (the time the task lists and the
aggregates always filtered on) and its event source (``--source NAME``; empty for the one
unlabelled source), so every aggregate can be scoped to one source without a scan:

- ``rollup_hours``: counts by outcome, and runtime and queue-wait histograms with fixed
  Prometheus-style bounds (:data:`BOUNDS`), so percentiles come from buckets;
- ``rollup_names``: each task name's task count and last ``sort_ts``;
- ``rollup_failures``: failure groups (name x exception type) per hour with first and last
  seen and the latest task as a sample;
- ``rollup_totals`` and ``rollup_failed_totals``: the same counts without the hour, never
  expired, for Prometheus counters.

Totals only ever grow, as a Prometheus counter must (a drop reads as a counter reset, and
``rate()`` would jump by the whole count). A task adds to the totals only what it gained
since its stored row, and it adds it under its labels of now: when a late ``task.published``
tells a task's queue, its ``started`` stays counted under the queue known when it started
and its ``succeeded`` goes under the queue it has now; each is counted once, as an exporter
counting events would. A loss (a late event turning a LOST task into SUCCESS) is never
subtracted, so such a task counts in both.

DDL, the backfill of an existing store and retention are in ``rollups_schema``; the reads in
``rollups_read``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stemtrace.core.states import TaskState
from stemtrace.server.store.codec import chunks, marks

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

HOUR = 3600.0
# Histogram bucket upper bounds in seconds (``le``), shared by runtime and queue wait: the
# Prometheus client's defaults up to 10 s, then the minutes-to-an-hour a backlog can take.
BOUNDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
NB = len(BOUNDS) + 1  # the last bucket is +Inf

COUNTS = (
    "tasks",
    "sent",
    "received",
    "started",
    "succeeded",
    "failed",
    "retried",
    "revoked",
    "rejected",
    "lost",
    "retried_tasks",  # ``retried`` counts retries; this, the tasks that retried at least once
)
# Every value column of ``rollup_hours`` / ``rollup_totals``, in order.
VALUE_COLUMNS: tuple[str, ...] = (
    *COUNTS,
    "runtime_sum",
    "wait_sum",
    *(f"rt{i}" for i in range(NB)),
    *(f"qw{i}" for i in range(NB)),
)
WIDTH = len(VALUE_COLUMNS)
RUNTIME_SUM = COUNTS.__len__()
WAIT_SUM = RUNTIME_SUM + 1
RT0 = WAIT_SUM + 1
QW0 = RT0 + NB
FLOAT_COLUMNS = frozenset({"runtime_sum", "wait_sum"})

_OUTCOME = {
    TaskState.SUCCESS.value: COUNTS.index("succeeded"),
    TaskState.FAILURE.value: COUNTS.index("failed"),
    TaskState.REVOKED.value: COUNTS.index("revoked"),
    TaskState.REJECTED.value: COUNTS.index("rejected"),
    TaskState.LOST.value: COUNTS.index("lost"),
}
_SENT, _RECEIVED, _STARTED = (COUNTS.index(c) for c in ("sent", "received", "started"))
_RETRIED = COUNTS.index("retried")
_RETRIED_TASKS = COUNTS.index("retried_tasks")
# A failure group counts what the failures view always listed: every state a workflow rolls
# up to FAILURE for (see ``core.states.FAILED_STATES``).
FAILED_GROUP_STATES = frozenset({TaskState.FAILURE.value, TaskState.LOST.value, TaskState.REJECTED.value})

# The stored columns a contribution reads, in ``Snapshot`` order.
SNAPSHOT = (
    "name",
    "state",
    "queue",
    "sort_ts",
    "sent_at",
    "received_at",
    "started_at",
    "finished_at",
    "runtime_ms",
    "exception_type",
    "retries",
    "source",
)
_SOURCE = SNAPSHOT.index("source")
Snapshot = tuple[Any, ...]  # a task's ``SNAPSHOT`` columns


def bucket(seconds: float) -> int:
    """The index of the first bound ``seconds`` is under (``le``), ``NB - 1`` for +Inf."""
    for i, bound in enumerate(BOUNDS):
        if seconds <= bound:
            return i
    return NB - 1


def contribution(s: Snapshot) -> tuple[tuple[str, str, int, str], list[tuple[int, float]]] | None:
    """A task's key ``(name, queue, hour, source)`` and its sparse values ``[(column index,
    value)]``; None for a task not known by name yet (it is counted once its name arrives)."""
    name, state, queue, sort_ts, sent, received, started, _finished, runtime_ms, _exc, retries, source = s
    if name is None:
        return None
    values: list[tuple[int, float]] = [(0, 1)]
    if sent is not None:
        values.append((_SENT, 1))
    if received is not None:
        values.append((_RECEIVED, 1))
    if started is not None:
        values.append((_STARTED, 1))
        if sent is not None:
            wait = max(float(started) - float(sent), 0.0)
            values.append((WAIT_SUM, wait))
            values.append((QW0 + bucket(wait), 1))
    outcome = _OUTCOME.get(state)
    if outcome is not None:
        values.append((outcome, 1))
    if retries:
        values.append((_RETRIED, int(retries)))
        values.append((_RETRIED_TASKS, 1))
    if runtime_ms is not None and math.isfinite(runtime_ms) and runtime_ms >= 0:
        seconds = float(runtime_ms) / 1000.0
        values.append((RUNTIME_SUM, seconds))
        values.append((RT0 + bucket(seconds), 1))
    return (str(name), queue or "", int(float(sort_ts) // HOUR), source or ""), values


def failure_key(s: Snapshot) -> tuple[str, str, int, str] | None:
    """The failure group ``(name, exception type, hour, source)`` a task counts in, if any."""
    if s[1] not in FAILED_GROUP_STATES:
        return None
    return (s[0] or "", s[9] or "", int(float(s[3]) // HOUR), s[_SOURCE] or "")


class Deltas:
    """What one batch adds to each roll-up table, summed by key (each key once per statement:
    PostgreSQL refuses an upsert that touches a row twice)."""

    def __init__(self) -> None:
        self.hours: dict[tuple[str, str, int, str], list[float]] = {}  # name, queue, hour, source
        self.totals: dict[tuple[str, str, str], list[float]] = {}  # name, queue, source
        # name, exception type, hour, source -> count, first, last, sample id, sample ts
        self.failures: dict[tuple[str, str, int, str], list[Any]] = {}
        self.totals_first: dict[tuple[str, str, str], float] = {}  # a totals row's first sort_ts
        self.failed_totals: dict[tuple[str, str, str, str], int] = {}  # name, queue, exception, source
        # (name, source) -> count, first seen, last seen (None: unchanged)
        self.names: dict[tuple[str, str], list[Any]] = {}
        self.new_tasks = 0

    def task(self, task_id: str, before: Snapshot | None, after: Snapshot) -> None:
        """Add ``after`` and take away ``before`` (the same task's stored row, if any)."""
        if before == after:
            return
        if before is not None and not after[_SOURCE] and before[_SOURCE]:
            # A row rewritten without its source (LOST marking, a salvage) keeps the stored one
            # (``task_row.write_tasks``): so does its contribution.
            after = (*after[:_SOURCE], before[_SOURCE], *after[_SOURCE + 1 :])
            if before == after:
                return
        if before is None:
            self.new_tasks += 1
        old = contribution(before) if before is not None else None
        new = contribution(after)
        grew: dict[int, float] = {}
        if new is not None:
            self._hour(new[0], new[1], 1, float(after[3]))
            for i, v in new[1]:
                grew[i] = grew.get(i, 0) + v
        if old is not None:
            self._hour(old[0], old[1], -1, None)
            if new is not None:  # under whatever key: see "Totals" in the module's docstring
                for i, v in old[1]:
                    grew[i] = grew.get(i, 0) - v
        if new is not None and grew:
            name, queue, _hour, source = new[0]
            key = (name, queue, source)
            row = self.totals.get(key)
            if row is None:
                row = self.totals[key] = [0] * WIDTH
                self.totals_first[key] = float(after[3])
            for i, v in grew.items():
                if v > 0:
                    row[i] += v
        self._failure(task_id, before, -1)
        self._failure(task_id, after, 1)
        self._failed_total(after, before)

    def _hour(
        self, key: tuple[str, str, int, str], values: list[tuple[int, float]], sign: int, ts: float | None
    ) -> None:
        row = self.hours.get(key)
        if row is None:
            row = self.hours[key] = [0] * WIDTH
        for i, v in values:
            row[i] += sign * v
        name = self.names.get((key[0], key[3]))
        if name is None:
            self.names[(key[0], key[3])] = [sign, ts, ts]
        else:
            name[0] += sign
            if ts is not None:
                name[1] = ts if name[1] is None else min(name[1], ts)
                name[2] = ts if name[2] is None else max(name[2], ts)

    def _failure(self, task_id: str, s: Snapshot | None, sign: int) -> None:
        key = failure_key(s) if s is not None else None
        if key is None or s is None:
            return
        row = self.failures.get(key)
        if row is None:
            row = self.failures[key] = [0, None, None, None, None]
        row[0] += sign
        if sign > 0:  # a task leaving a group leaves its first/last seen and sample as they were
            seen = float(s[7] if s[7] is not None else s[3])
            row[1] = seen if row[1] is None else min(row[1], seen)
            row[2] = seen if row[2] is None else max(row[2], seen)
            if row[4] is None or seen >= row[4]:
                row[3], row[4] = task_id, seen

    def _failed_total(self, after: Snapshot, before: Snapshot | None) -> None:
        """``celery_task_failed_total`` by exception: a task that became FAILURE counts once."""
        if after[1] != TaskState.FAILURE.value or after[0] is None:
            return
        if before is not None and before[1] == TaskState.FAILURE.value and before[0] == after[0]:
            return
        key = (str(after[0]), after[2] or "", after[9] or "", after[_SOURCE] or "")
        self.failed_totals[key] = self.failed_totals.get(key, 0) + 1


def stored_snapshots(w: BatchWriter, ids: Sequence[str]) -> dict[str, Snapshot]:
    """The ``SNAPSHOT`` columns of the stored rows among ``ids`` (before this write)."""
    out: dict[str, Snapshot] = {}
    cols = ", ".join(SNAPSHOT)
    for part in chunks(ids):
        for row in w.q(f"SELECT id, {cols} FROM tasks WHERE id IN ({marks(len(part))})", part):
            out[row[0]] = tuple(row[1:])
    return out


_POSITIONS: list[tuple[int, tuple[int, ...]]] = []


def _positions() -> tuple[int, tuple[int, ...]]:
    """Where the id and each ``SNAPSHOT`` column sit in a task row (``task_row.TASK_COLUMNS``;
    read on first use: ``task_row`` calls this module, so it cannot be imported at the top)."""
    if not _POSITIONS:
        from stemtrace.server.store.task_row import TASK_COLUMNS

        cols = [c.strip() for c in TASK_COLUMNS.split(",")]
        _POSITIONS.append((cols.index("id"), tuple(cols.index(c) for c in SNAPSHOT)))
    return _POSITIONS[0]


def apply(w: BatchWriter, rows: Sequence[Sequence[Any]]) -> None:
    """Bring the roll-ups up to date with ``rows`` (task rows about to be written)."""
    if not rows:
        return
    id_at, pick = _positions()
    before = stored_snapshots(w, [r[id_at] for r in rows])
    d = Deltas()
    for r in rows:
        tid = r[id_at]
        d.task(tid, before.get(tid), tuple(r[i] for i in pick))
    write(w.conn, w.d, d)


def write(conn: Any, dialect: Any, d: Deltas) -> None:
    """Upsert every delta of ``d`` (one statement per table)."""
    cols = ", ".join(VALUE_COLUMNS)
    types = tuple("float8" if c in FLOAT_COLUMNS else "bigint" for c in VALUE_COLUMNS)

    def add(table: str) -> str:
        return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in VALUE_COLUMNS)

    hours = [[n, q, h, s, *_typed(v)] for (n, q, h, s), v in sorted(d.hours.items()) if any(v)]
    dialect.insert_rows(
        conn,
        f"INSERT INTO rollup_hours (name, queue, hour, source, {cols})",
        ("text", "text", "bigint", "text", *types),
        hours,
        tail=f"ON CONFLICT (hour, name, queue, source) DO UPDATE SET {add('rollup_hours')}",
    )
    totals = [[*k, d.totals_first[k], *_typed(v)] for k, v in sorted(d.totals.items()) if any(v)]
    dialect.insert_rows(
        conn,
        f"INSERT INTO rollup_totals (name, queue, source, first_seen, {cols})",
        ("text", "text", "text", "float8", *types),
        totals,
        tail=f"ON CONFLICT (name, queue, source) DO UPDATE SET {add('rollup_totals')}",
    )
    dialect.insert_rows(
        conn,
        "INSERT INTO rollup_failed_totals (name, queue, exception_type, source, count)",
        ("text", "text", "text", "text", "bigint"),
        [[*k, c] for k, c in sorted(d.failed_totals.items())],
        tail="ON CONFLICT (name, queue, exception_type, source) DO UPDATE SET "
        "count = rollup_failed_totals.count + excluded.count",
    )
    dialect.insert_rows(
        conn,
        "INSERT INTO rollup_failures "
        "(name, exception_type, hour, source, count, first_seen, last_seen, sample_id, sample_ts)",
        ("text", "text", "bigint", "text", "bigint", "float8", "float8", "text", "float8"),
        [[*k, *v] for k, v in sorted(d.failures.items())],
        tail="ON CONFLICT (hour, name, exception_type, source) DO UPDATE SET "
        "count = rollup_failures.count + excluded.count, "
        f"first_seen = {_least('rollup_failures', 'first_seen')}, "
        f"last_seen = {_greatest('rollup_failures', 'last_seen')}, "
        f"sample_id = CASE WHEN {_newer} THEN excluded.sample_id ELSE rollup_failures.sample_id END, "
        f"sample_ts = CASE WHEN {_newer} THEN excluded.sample_ts ELSE rollup_failures.sample_ts END",
    )
    dialect.insert_rows(
        conn,
        "INSERT INTO rollup_names (name, source, count, first_seen, last_seen)",
        ("text", "text", "bigint", "float8", "float8"),
        [[n, s, int(v[0]), v[1], v[2]] for (n, s), v in sorted(d.names.items())],
        tail="ON CONFLICT (name, source) DO UPDATE SET count = rollup_names.count + excluded.count, "
        f"first_seen = {_least('rollup_names', 'first_seen')}, "
        f"last_seen = {_greatest('rollup_names', 'last_seen')}",
    )
    if d.new_tasks:
        conn.execute(
            dialect.sql("UPDATE store_counts SET count = count + ? WHERE key = 'tasks'"), (d.new_tasks,)
        )


_newer = (
    "excluded.sample_ts IS NOT NULL AND (rollup_failures.sample_ts IS NULL "
    "OR excluded.sample_ts >= rollup_failures.sample_ts)"
)


def _least(table: str, col: str) -> str:
    """The smaller of the stored and the new value, a NULL on either side taking the other
    (SQLite has no LEAST; its two-argument min() is NULL when either is)."""
    return (
        f"CASE WHEN excluded.{col} IS NULL THEN {table}.{col} WHEN {table}.{col} IS NULL "
        f"OR excluded.{col} < {table}.{col} THEN excluded.{col} ELSE {table}.{col} END"
    )


def _greatest(table: str, col: str) -> str:
    return (
        f"CASE WHEN excluded.{col} IS NULL THEN {table}.{col} WHEN {table}.{col} IS NULL "
        f"OR excluded.{col} > {table}.{col} THEN excluded.{col} ELSE {table}.{col} END"
    )


def _typed(values: list[float]) -> list[Any]:
    return [float(v) if i in (RUNTIME_SUM, WAIT_SUM) else int(v) for i, v in enumerate(values)]
