"""Aggregates over the stored tasks: task names, failure groups, per-task statistics.

Each scans the ``tasks`` table within its filters; they are apart from the list and detail
queries (``read``) because they are what ingest-time roll-ups are to replace at scale.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from stemtrace.core.states import TaskState
from stemtrace.server.store.codec import NOT_PLUMBING, marks
from stemtrace.server.store.read import FAILED_VALUES, Reader, time_range


def task_names(r: Reader) -> list[tuple[str, int]]:
    rows = r.q("SELECT name, COUNT(*) FROM tasks WHERE name IS NOT NULL GROUP BY name ORDER BY name")
    return [(str(n), int(c)) for n, c in rows]


def failures(
    r: Reader, since: float | None, until: float | None, name: str | None, limit: int
) -> list[dict[str, Any]]:
    # Every state a workflow rolls up to FAILURE for; Celery's plumbing is not the user's.
    where = [f"state IN ({marks(len(FAILED_VALUES))})", NOT_PLUMBING]
    params: list[Any] = list(FAILED_VALUES)
    time_range(where, params, since, until)
    if name is not None:
        where.append("name = ?")
        params.append(name)
    clause = " AND ".join(where)
    groups = r.q(
        f"SELECT name, exception_type, COUNT(*), MAX(sort_ts) FROM tasks WHERE {clause} "
        "GROUP BY name, exception_type ORDER BY COUNT(*) DESC, MAX(sort_ts) DESC LIMIT ?",
        [*params, limit],
    )
    out = []
    for gname, etype, count, _last in groups:
        etype_cond = "exception_type = ?" if etype is not None else "exception_type IS NULL"
        extra = [etype] if etype is not None else []
        sample = r.q(
            f"SELECT id, COALESCE(finished_at, sort_ts), detail FROM tasks WHERE {clause} AND name "
            + ("= ?" if gname is not None else "IS NULL")
            + f" AND {etype_cond} ORDER BY sort_ts DESC, id DESC LIMIT 1",
            [*params, *([gname] if gname is not None else []), *extra],
        )
        tid, seen, detail = sample[0]
        message = json.loads(detail).get("exception")
        out.append(
            {
                "name": gname,
                "exception_type": etype,
                "count": int(count),
                "last_seen": float(seen),
                "last_task_id": tid,
                "sample_message": str(message)[:500] if message is not None else None,
            }
        )
    return out


def task_stats(r: Reader, since: float, until: float, name: str | None, buckets: int) -> list[dict[str, Any]]:
    step = max((until - since) / max(buckets, 1), 1.0)
    where = ["sort_ts >= ?", "sort_ts < ?", NOT_PLUMBING]
    params: list[Any] = [since, until]
    if name is not None:
        where.append("name = ?")
        params.append(name)
    clause = " AND ".join(where)
    series: dict[str, dict[int, list[int]]] = defaultdict(dict)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for tname, bucket, state, n, retried, retries in r.q(
        f"SELECT name, {r.d.bucket('(sort_ts - ?)')}, state, COUNT(*), "
        f"SUM(CASE WHEN retries > 0 THEN 1 ELSE 0 END), SUM(retries) FROM tasks WHERE {clause} "
        "AND name IS NOT NULL GROUP BY 1, 2, 3",
        [since, step, *params],
    ):
        cell = series[tname].setdefault(int(bucket), [0, 0])
        tot = totals[tname]
        tot[0] += int(n)
        tot[4] += int(retried or 0)
        tot[5] += int(retries or 0)
        if state == TaskState.SUCCESS.value:
            cell[0] += int(n)
            tot[1] += int(n)
        elif state in FAILED_VALUES:
            cell[1] += int(n)
            tot[2] += int(n)
        elif state == TaskState.REVOKED.value:
            tot[3] += int(n)
    out = []
    for tname in sorted(totals):
        runtimes = sorted(
            float(r)
            for (r,) in r.q(
                "SELECT runtime_ms FROM tasks WHERE name = ? AND sort_ts >= ? AND sort_ts < ? "
                "AND runtime_ms IS NOT NULL ORDER BY sort_ts DESC LIMIT 50000",
                [tname, since, until],
            )
        )
        total, ok, failed, revoked, retried, retries = totals[tname]
        done = ok + failed
        out.append(
            {
                "name": tname,
                "total": total,
                "succeeded": ok,
                "failed": failed,
                "revoked": revoked,
                "retried": retried,
                "retries": retries,
                "failure_rate": failed / done if done else 0.0,
                "runtime_p50_ms": _pct(runtimes, 0.50),
                "runtime_p95_ms": _pct(runtimes, 0.95),
                "series": [
                    {"t": since + b * step, "succeeded": c[0], "failed": c[1]}
                    for b, c in sorted(series[tname].items())
                ],
            }
        )
    return out


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]
