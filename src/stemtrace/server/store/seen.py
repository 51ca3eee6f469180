"""Seen sequence ranges and loss records: the store's half of loss detection.

``record`` runs once per applied batch (an upsert per run of seqs, no read). ``settle`` runs
every few seconds: per library process with a hole (or more than one row), it merges the
rows, records the gaps open past the grace period as losses, and writes back the merged
ranges with those gaps closed, all in one write transaction. Write transactions are
serialized on both engines (SQLite has one writer; PostgreSQL's ``begin_write`` takes an
advisory lock), so replicas never settle the same process twice at once. The decisions
are ``core.gaps``'; this module only moves rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from stemtrace.core.gaps import OVERFLOW, SeqRange, causes, gaps, merge, overdue
from stemtrace.server.store.body import load_events
from stemtrace.server.store.task_row import IDS
from stemtrace.server.store.write import BatchWriter

# inst, lo, hi, lo_at, hi_at, lo_ts, hi_ts, host, pid
SeenRow = tuple[str, int, int, float, float, float, float, str | None, int | None]

_COLUMNS = "inst, lo, hi, lo_at, hi_at, lo_ts, hi_ts, host, pid"
_GROWS = "excluded.hi > seq_ranges.hi"
_UPSERT = (
    f"INSERT INTO seq_ranges ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (inst, lo) DO UPDATE SET "
    f"hi_at = CASE WHEN {_GROWS} THEN excluded.hi_at ELSE seq_ranges.hi_at END, "
    f"hi_ts = CASE WHEN {_GROWS} THEN excluded.hi_ts ELSE seq_ranges.hi_ts END, "
    f"hi = CASE WHEN {_GROWS} THEN excluded.hi ELSE seq_ranges.hi END"
)
SETTLE_PER_SCAN = 200  # processes settled per transaction: a scan never holds the writer long
# A process's seqs before the first one this store saw are lost only if the store was already
# subscribed when they were sent. A process already running when the store was created (a second
# server joining a broker, a store replaced) sends its first event here within a health interval
# or so: the seqs before that predate the store and were never meant for it.
LEADING_GRACE_S = 300.0


def _created_at(w: BatchWriter) -> float | None:
    found = w.q("SELECT value FROM store_meta WHERE key = ?", ["created_at"])
    try:
        return float(found[0][0]) if found else None
    except (TypeError, ValueError):
        return None


def record(w: BatchWriter, rows: Sequence[SeenRow]) -> None:
    w.many(_UPSERT, rows)


def _int(value: Any) -> int:
    """A counter from a stored health report, whatever a buggy or hostile sender put there."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**62:
        return max(0, int(value))
    return 0


def _reported_overflow(w: BatchWriter, inst: str) -> tuple[bool, int]:
    """Whether the process ever reported its health, and its events dropped for overflow."""
    found = w.q("SELECT detail FROM library_health WHERE inst = ?", [inst])
    if not found:
        return False, 0
    try:
        detail = json.loads(found[0][0])
    except (TypeError, ValueError):
        return True, 0
    drops = detail.get("drops") if isinstance(detail, dict) else None
    return True, _int(drops.get(OVERFLOW)) if isinstance(drops, dict) else 0


def settle(w: BatchWriter, now: float, grace: float) -> int:
    """Merge the ranges of processes with holes, and record the holes open for ``grace``
    seconds as losses. Returns how many events were newly recorded lost."""
    insts = [
        inst
        for (inst,) in w.q(
            "SELECT inst FROM seq_ranges GROUP BY inst HAVING COUNT(*) > 1 OR MIN(lo) > 1 LIMIT ?",
            [SETTLE_PER_SCAN],
        )
    ]
    lost = 0
    created = _created_at(w)
    for inst in insts:
        rows = w.q(f"SELECT {_COLUMNS} FROM seq_ranges WHERE inst = ?", [inst])
        host, pid = rows[0][7], rows[0][8]
        old = [
            SeqRange(int(r[1]), int(r[2]), float(r[3]), float(r[4]), float(r[5]), float(r[6])) for r in rows
        ]
        due = overdue(gaps(merge(old)), now, grace)
        if due:
            reported, overflow = _reported_overflow(w, inst)
            taken = w.q(
                "SELECT COALESCE(SUM(count), 0) FROM losses WHERE inst = ? AND cause = ?", [inst, OVERFLOW]
            )
            left = overflow - int(taken[0][0] or 0)
            records = []
            for gap in due:
                early = (
                    gap.after_ts is None
                    and created is not None
                    and (gap.before_ts or 0.0) <= created + LEADING_GRACE_S
                )
                for cause, count in causes(gap.count, left, reported):
                    if cause == OVERFLOW:
                        left -= count
                    elif early:
                        continue  # sent before this store subscribed: never meant for it, not lost
                    records.append(
                        (inst, gap.first, gap.last, count, cause, host, pid, gap.after_ts, gap.before_ts, now)
                    )
                    lost += count
            w.many(
                "INSERT INTO losses (inst, first_seq, last_seq, count, cause, host, pid, start_ts, end_ts, "
                "detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                records,
            )
        merged = merge([*old, *(g.fill(now) for g in due)])
        if len(merged) == len(old):
            continue  # nothing to compact: the rows are already one per run
        # Only rows unchanged since they were read are replaced (a concurrent ``record`` may
        # have grown one: it stays, and merges with the rest next time).
        w.many(
            "DELETE FROM seq_ranges WHERE inst = ? AND lo = ? AND hi = ?",
            [(inst, r.lo, r.hi) for r in old],
        )
        record(w, [(inst, r.lo, r.hi, r.lo_at, r.hi_at, r.lo_ts, r.hi_ts, host, pid) for r in merged])
    return lost


def expire(w: BatchWriter, before: float) -> None:
    """Forget processes silent since ``before`` and losses detected before it."""
    w.q("DELETE FROM seq_ranges WHERE hi_at < ?", [before])
    w.q("DELETE FROM losses WHERE detected_at < ?", [before])


def report(conn_q: Any, recent_since: float, limit: int = 20) -> dict[str, Any]:
    """Totals by cause, the count detected since ``recent_since``, and the latest records.

    ``conn_q`` runs a query (``Reader.q``)."""
    by_cause = {str(c): int(n) for c, n in conn_q("SELECT cause, SUM(count) FROM losses GROUP BY cause")}
    recent = conn_q("SELECT COALESCE(SUM(count), 0) FROM losses WHERE detected_at >= ?", [recent_since])
    latest = conn_q(
        "SELECT inst, host, pid, first_seq, last_seq, count, cause, start_ts, end_ts, detected_at "
        "FROM losses ORDER BY detected_at DESC, inst, first_seq LIMIT ?",
        [limit],
    )
    keys = (
        "inst",
        "host",
        "pid",
        "first_seq",
        "last_seq",
        "count",
        "cause",
        "start_ts",
        "end_ts",
        "detected_at",
    )
    return {
        "total": sum(by_cause.values()),
        "by_cause": by_cause,
        "recent": int(recent[0][0] or 0),
        "latest": [dict(zip(keys, row, strict=True)) for row in latest],
    }


def overlapping(conn_q: Any, start: float, end: float, insts: Sequence[str] | None = None) -> int:
    """Events lost in windows that overlap ``start..end`` (from ``insts`` only, when given).

    A window's bounds are the times of the events seen on either side of the gap, so they
    are exclusive: a workflow that ended with the event before the gap is not in it."""
    where = "end_ts > ? AND (start_ts IS NULL OR start_ts < ?)"
    params: list[Any] = [start, end]
    if insts is not None:
        if not insts:
            return 0
        where += f" AND inst IN ({', '.join('?' for _ in insts)})"
        params.extend(insts)
    found = conn_q(f"SELECT COALESCE(SUM(count), 0) FROM losses WHERE {where}", params)
    return int(found[0][0] or 0)


def overlapping_workflow(conn_q: Any, start: float, end: float, workflow_id: str) -> int:
    """Events lost in windows overlapping ``start..end`` from the processes that sent any of
    ``workflow_id``'s events (the check a workflow page makes: "events may be missing")."""
    lost = overlapping(conn_q, start, end)
    if not lost:  # almost always: no loss at all in the window
        return 0
    # The insts are in each task's event log: read only here, when there was a loss.
    insts = {
        e["src"]["inst"]
        for *ids, blob in conn_q(f"SELECT {IDS}, detail FROM tasks WHERE workflow_id = ?", [workflow_id])
        for e in load_events(ids, blob)
    }
    return overlapping(conn_q, start, end, sorted(insts))
