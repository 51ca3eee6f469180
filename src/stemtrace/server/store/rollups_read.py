"""Reads of the roll-ups (``store/rollups.py``): the aggregate endpoints and ``/metrics``.

Each is a range scan of an hourly table's primary key (or a small table read whole): its cost
grows with task names x hours in the range, never with the tasks stored. Ranges are widened
to whole hours for the statistics (an hour counts when any of it is in ``[since, until)``);
failure groups are exact (their partial edge hours come from the failed tasks in them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stemtrace.server.store.body import load_record
from stemtrace.server.store.codec import NOT_PLUMBING, chunks, marks
from stemtrace.server.store.read import Reader, time_range
from stemtrace.server.store.rollups import BOUNDS, FAILED_GROUP_STATES, HOUR, NB, VALUE_COLUMNS
from stemtrace.server.store.task_row import IDS


def _hours(where: list[str], params: list[Any], since: float | None, until: float | None) -> None:
    if since is not None:
        where.append("hour >= ?")
        params.append(int(since // HOUR))
    if until is not None:
        where.append("hour < ?")
        params.append(math.ceil(until / HOUR))


def _source(where: list[str], params: list[Any], source: str | None) -> None:
    """Scope a roll-up read to one event source (``--source NAME``); None: every source."""
    if source is not None:
        where.append("source = ?")
        params.append(source)


def task_names(r: Reader, source: str | None = None) -> list[tuple[str, int]]:
    where = ["count > 0"]
    params: list[Any] = []
    _source(where, params, source)
    rows = r.q(
        f"SELECT name, SUM(count) FROM rollup_names WHERE {' AND '.join(where)} GROUP BY name ORDER BY name",
        params,
    )
    return [(str(n), int(c)) for n, c in rows]


def failures(
    r: Reader,
    since: float | None,
    until: float | None,
    name: str | None,
    limit: int,
    *,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Failure groups over ``[since, until)``, exactly: the hours wholly inside the range come
    from ``rollup_failures``, the partial hours at its edges from the failed tasks in them (a
    range scan of ``tasks_state``, bounded by two hours of failures). Alerts compare 10-minute
    windows, so the edges must not be widened to hours here."""
    lo = None if since is None else math.ceil(since / HOUR)
    hi = None if until is None else math.floor(until / HOUR)
    edges: list[tuple[float | None, float | None]] = []
    if lo is not None and hi is not None and lo >= hi:
        edges.append((since, until))  # within one hour (or two partial ones): tasks only
        lo = hi = None
        whole = False
    else:
        whole = True
        if lo is not None and since is not None and lo * HOUR > since:
            edges.append((since, lo * HOUR))
        if hi is not None and until is not None and hi * HOUR < until:
            edges.append((hi * HOUR, until))
    groups: dict[tuple[str, str], list[Any]] = {}  # count, last seen, sample id, sample ts
    if whole:
        where = [NOT_PLUMBING]
        params: list[Any] = []
        if lo is not None:
            where.append("hour >= ?")
            params.append(lo)
        if hi is not None:
            where.append("hour < ?")
            params.append(hi)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        _source(where, params, source)
        clause = " AND ".join(where)
        for gname, etype, count, last in r.q(
            f"SELECT name, exception_type, SUM(count), MAX(last_seen) FROM rollup_failures WHERE {clause} "
            "GROUP BY name, exception_type HAVING SUM(count) > 0",
            params,
        ):
            groups[(gname, etype)] = [int(count), last, None, None]
    for start, end in edges:
        _edge(r, groups, start, end, name, source=source)
    ranked = sorted(
        ((k, v) for k, v in groups.items() if v[0] > 0),
        key=lambda kv: (-kv[1][0], -(kv[1][1] or 0.0), kv[0]),
    )[:limit]
    for (gname, etype), g in ranked:
        if whole:  # the latest sample of the whole hours, if later than the edges' one
            found = r.q(
                f"SELECT sample_id, sample_ts FROM rollup_failures WHERE {clause} AND name = ? "
                "AND exception_type = ? AND sample_id IS NOT NULL ORDER BY sample_ts DESC LIMIT 1",
                [*params, gname, etype],
            )
            if found and (g[3] is None or found[0][1] >= g[3]):
                g[2], g[3] = found[0]
    messages: dict[str, Any] = {}
    ids = sorted({g[2] for _, g in ranked if g[2]})
    for part in chunks(ids):
        for *task_ids, detail in r.q(
            f"SELECT {IDS}, detail FROM tasks WHERE id IN ({marks(len(part))})", part
        ):
            messages[task_ids[0]] = load_record(task_ids, detail).get("exception")
    out = []
    for (gname, etype), (count, last, sample, _ts) in ranked:
        message = messages.get(sample) if sample else None
        out.append(
            {
                "name": gname or None,
                "exception_type": etype or None,
                "count": int(count),
                "last_seen": float(last) if last is not None else None,
                "last_task_id": sample or "",
                "sample_message": str(message)[:500] if message is not None else None,
            }
        )
    return out


def _edge(
    r: Reader,
    groups: dict[tuple[str, str], list[Any]],
    since: float | None,
    until: float | None,
    name: str | None,
    *,
    source: str | None,
) -> None:
    """Add the failed tasks of ``[since, until)`` (part of one hour) to ``groups``."""
    where = [f"state IN ({marks(len(FAILED_GROUP_STATES))})", NOT_PLUMBING]
    params: list[Any] = sorted(FAILED_GROUP_STATES)
    time_range(where, params, since, until)
    if name is not None:
        where.append("name = ?")
        params.append(name)
    _source(where, params, source)
    for gname, etype, tid, seen in r.q(
        f"SELECT name, exception_type, id, COALESCE(finished_at, sort_ts) FROM tasks "
        f"WHERE {' AND '.join(where)}",
        params,
    ):
        g = groups.setdefault((gname or "", etype or ""), [0, None, None, None])
        g[0] += 1
        g[1] = seen if g[1] is None else max(g[1], seen)
        if g[3] is None or (seen, tid) > (g[3], g[2]):  # the latest, by when it failed
            g[2], g[3] = tid, seen


_RT = ", ".join(f"SUM(rt{i})" for i in range(NB))
_FAILED = "failed + lost + rejected"  # what the stats call failed: work not done


def task_stats(
    r: Reader, since: float, until: float, name: str | None, buckets: int, *, source: str | None = None
) -> list[dict[str, Any]]:
    step = max((until - since) / max(buckets, 1), 1.0)
    where = ["name IS NOT NULL", NOT_PLUMBING]
    params: list[Any] = []
    _hours(where, params, since, until)
    if name is not None:
        where.append("name = ?")
        params.append(name)
    _source(where, params, source)
    clause = " AND ".join(where)
    series: dict[str, dict[int, list[int]]] = {}
    for tname, b, ok, failed in r.q(
        f"SELECT name, {r.d.bucket('(hour * 3600.0 - ?)')}, SUM(succeeded), SUM({_FAILED}) "
        f"FROM rollup_hours WHERE {clause} GROUP BY 1, 2",
        [since, step, *params],
    ):
        cell = series.setdefault(tname, {}).setdefault(max(int(b), 0), [0, 0])
        cell[0] += int(ok)
        cell[1] += int(failed)
    out = []
    for tname, total, ok, failed, revoked, retried, retries, *rt in r.q(
        f"SELECT name, SUM(tasks), SUM(succeeded), SUM({_FAILED}), SUM(revoked), SUM(retried_tasks), "
        f"SUM(retried), {_RT} "
        f"FROM rollup_hours WHERE {clause} GROUP BY name HAVING SUM(tasks) > 0 ORDER BY name",
        params,
    ):
        counts = [int(c) for c in rt]
        done = int(ok) + int(failed)
        out.append(
            {
                "name": tname,
                "total": int(total),
                "succeeded": int(ok),
                "failed": int(failed),
                "revoked": int(revoked),
                "retried": int(retried),
                "retries": int(retries),
                "failure_rate": int(failed) / done if done else 0.0,
                "runtime_p50_ms": _ms(quantile(counts, 0.50)),
                "runtime_p95_ms": _ms(quantile(counts, 0.95)),
                "series": [
                    {"t": since + b * step, "succeeded": c[0], "failed": c[1]}
                    for b, c in sorted(series.get(tname, {}).items())
                ],
            }
        )
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile of a histogram (per-bucket counts over ``BOUNDS``), interpolated
    linearly within its bucket as Prometheus's ``histogram_quantile`` does; a quantile in
    the +Inf bucket is the highest finite bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[i - 1] if i else 0.0
            return lower + (BOUNDS[i] - lower) * max(rank - seen, 0.0) / n
        seen += n
    return BOUNDS[-1]


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    """What ``/metrics`` exports about tasks, read in one go from the never-expiring totals."""

    # (name, queue, first_seen, {column: value}, source) for every totals row
    totals: list[tuple[str, str, float, dict[str, float], str]]
    failed: list[tuple[str, str, str, int, str]]  # (name, queue, exception type, count, source)
    lost_recent: int  # LOST tasks whose hour is this one or the one before


def task_metrics(r: Reader, now: float) -> TaskMetrics:
    cols = ", ".join(VALUE_COLUMNS)
    totals = [
        (str(row[0]), str(row[1]), float(row[3]), dict(zip(VALUE_COLUMNS, row[4:], strict=True)), str(row[2]))
        for row in r.q(
            f"SELECT name, queue, source, first_seen, {cols} FROM rollup_totals ORDER BY name, queue, source"
        )
    ]
    failed = [
        (str(n), str(q), str(e), int(c), str(src))
        for n, q, e, c, src in r.q(
            "SELECT name, queue, exception_type, count, source FROM rollup_failed_totals "
            "ORDER BY name, queue, exception_type, source"
        )
    ]
    recent = r.q("SELECT SUM(lost) FROM rollup_hours WHERE hour >= ?", [int(now // HOUR) - 1])
    return TaskMetrics(totals, failed, int(recent[0][0] or 0))
