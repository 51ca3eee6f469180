"""Celery task metrics for ``/metrics``, named and labelled as celery-exporter names them.

Everything comes from the store's roll-ups (``store/rollups.py``), which every replica reads
alike: two replicas behind one load balancer export the same values, and a restart loses
nothing. The counters come from totals that never expire, so they only grow over the store's
life (retention drops hourly rows, never totals).

Labels: ``name`` (task name), ``queue_name``, ``source`` and, for failures, ``exception``;
worker gauges carry ``hostname``. ``source`` is the task's event source (``--source NAME``);
the one unlabelled source of ``--app``/``--broker``/``--events-url`` has the empty value, which
Prometheus stores as no label at all, so it is left out: a single-source server exports exactly
the series it always did, and queries that sum over ``name`` or ``queue_name`` keep working
when sources are added. Task counters have no ``hostname`` label (celery-exporter's has one): a
task's attempts may run on several workers, and the per-worker view is the worker gauges.

Cardinality is bounded: the first :data:`MAX_NAMES` task names the store saw keep their own
label, later ones are summed under ``name="other"`` (``stemtrace_metrics_names_folded`` says
how many). A name once given its own series keeps it, so no series ever jumps between labels.
"""

from __future__ import annotations

import time
from typing import Any

from stemtrace.core.rollup import PLUMBING_NAMES
from stemtrace.core.workers import WorkerRecord
from stemtrace.server.context import ServerContext
from stemtrace.server.source import parse_sources
from stemtrace.server.store.rollups import BOUNDS, NB

MAX_NAMES = 200
OTHER = "other"
MAX_EXCEPTIONS = 50  # exception types per task name and queue before ``exception="other"``

Samples = list[tuple[str, float]]

_COUNTERS = (
    ("sent", "Tasks published (task-sent)."),
    ("received", "Tasks received by a worker (task-received)."),
    ("started", "Tasks a worker started (task-started)."),
    ("succeeded", "Tasks that succeeded (task-succeeded)."),
    ("retried", "Retries asked for (task-retried)."),
    ("revoked", "Tasks revoked or expired (task-revoked)."),
    ("rejected", "Tasks rejected by the worker (task-rejected)."),
    ("lost", "Tasks lost: the worker died or went offline under them (no Celery event says so)."),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**pairs: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _task_labels(name: str, queue: str, source: str, **more: Any) -> str:
    """A task series' labels; ``source`` only when it has a value (see the module docstring)."""
    if source:
        return _labels(name=name, queue_name=queue, source=source, **more)
    return _labels(name=name, queue_name=queue, **more)


class Exposition:
    """Lines of the Prometheus text format, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, kind: str, help_text: str, samples: Samples) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    def histogram(self, name: str, help_text: str, parts: dict[str, Samples]) -> None:
        """One family: its header, then the ``_bucket``, ``_sum`` and ``_count`` samples."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for suffix, samples in parts.items():
            self.lines.extend(f"{name}{suffix}{labels} {value:g}" for labels, value in samples)


def render_tasks(ctx: ServerContext) -> list[str]:
    """The task and worker metrics; only a 0 ``stemtrace_task_metrics_up`` when the store
    cannot answer."""
    metric = Exposition()
    now = time.time()
    try:
        tm = ctx.store.task_metrics(now)
    except Exception:
        metric("stemtrace_task_metrics_up", "gauge", "1 when the task metrics could be read.", [("", 0.0)])
        return metric.lines
    metric("stemtrace_task_metrics_up", "gauge", "1 when the task metrics could be read.", [("", 1.0)])
    kept = _kept_names(tm.totals)
    folded = {n for n, _q, _f, _v, _s in tm.totals if n not in kept and n not in PLUMBING_NAMES}
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for name, queue, _first, values, source in tm.totals:
        if name in PLUMBING_NAMES:
            continue
        key = (name if name in kept else OTHER, queue, source)
        into = rows.setdefault(key, dict.fromkeys(values, 0.0))
        for col, v in values.items():
            into[col] += float(v)
    for field, help_text in _COUNTERS:
        metric(
            f"celery_task_{field}_total",
            "counter",
            help_text,
            [(_task_labels(n, q, src), v[field]) for (n, q, src), v in sorted(rows.items())],
        )
    failed: dict[tuple[str, str, str, str], float] = {}
    per_key: dict[tuple[str, str, str], int] = {}
    for name, queue, exc, count, source in tm.failed:
        if name in PLUMBING_NAMES:
            continue
        n = name if name in kept else OTHER
        seen = per_key.get((n, queue, source), 0)
        e = exc if seen < MAX_EXCEPTIONS else OTHER
        per_key[(n, queue, source)] = seen + 1
        failed[(n, queue, source, e)] = failed.get((n, queue, source, e), 0.0) + count
    metric(
        "celery_task_failed_total",
        "counter",
        "Tasks that failed (task-failed), by exception type.",
        [(_task_labels(n, q, src, exception=e), v) for (n, q, src, e), v in sorted(failed.items())],
    )
    _histogram(
        metric,
        "celery_task_runtime",
        help_text="Task runtime in seconds.",
        rows=rows,
        prefix="rt",
        total="runtime_sum",
    )
    _histogram(
        metric,
        "celery_task_queue_wait_time",
        help_text="Seconds from a task's publication to its start on a worker.",
        rows=rows,
        prefix="qw",
        total="wait_sum",
    )
    metric(
        "stemtrace_metrics_names_folded",
        "gauge",
        f'Task names summed under name="{OTHER}" (over the first {MAX_NAMES} names).',
        [("", float(len(folded)))],
    )
    metric(
        "stemtrace_tasks_lost_recent",
        "gauge",
        "Tasks LOST whose hour is the current or the previous one.",
        [("", float(tm.lost_recent))],
    )
    _workers(ctx, metric, now)
    _stuck(ctx, metric, now)
    return metric.lines


def _kept_names(totals: list[tuple[str, str, float, dict[str, float], str]]) -> set[str]:
    first: dict[str, float] = {}
    for name, _queue, seen, _values, _source in totals:
        if name not in PLUMBING_NAMES:
            first[name] = min(seen, first.get(name, seen))
    return set(sorted(first, key=lambda n: (first[n], n))[:MAX_NAMES])


def _histogram(
    metric: Exposition,
    name: str,
    *,
    help_text: str,
    rows: dict[tuple[str, str, str], dict[str, float]],
    prefix: str,
    total: str,
) -> None:
    """Cumulative ``le`` buckets from the roll-up's per-bucket counts."""
    samples: Samples = []
    sums: Samples = []
    counts: Samples = []
    # The series' labels are written once, each bucket's ``le`` appended (it comes last): most
    # of a scrape's CPU went into escaping the same names again for every bucket.
    les = [f',le="{BOUNDS[i]:g}"}}' if i < len(BOUNDS) else ',le="+Inf"}' for i in range(NB)]
    columns = [f"{prefix}{i}" for i in range(NB)]
    for (n, q, src), v in sorted(rows.items()):
        labels = _task_labels(n, q, src)
        head = labels[:-1]
        running = 0.0
        for column, le in zip(columns, les, strict=True):
            running += v[column]
            samples.append((head + le, running))
        sums.append((labels, v[total]))
        counts.append((labels, running))
    metric.histogram(name, help_text, {"_bucket": samples, "_sum": sums, "_count": counts})


def _gauge_sources(ctx: ServerContext) -> list[str | None]:
    """The sources the worker and stuck gauges are read per: all at once (``None``, no label)
    for a server of one unlabelled source, else each named ``--source`` (which replaces it)."""
    names: list[str | None] = [name for name, _ in parse_sources(ctx.settings.sources)]
    return names or [None]


def _source_label(source: str | None, **labels: str) -> str:
    return _labels(**labels, source=source) if source else _labels(**labels)


def _workers(ctx: ServerContext, metric: Exposition, now: float) -> None:
    settings = ctx.settings
    beat = settings.expected_heartbeat_interval
    up: list[tuple[str, float]] = []
    active: list[tuple[str, float]] = []
    for source in _gauge_sources(ctx):
        try:
            workers = [WorkerRecord.from_dict(raw) for raw in ctx.store.list_workers(source)]
        except Exception:
            return
        for rec in sorted(workers, key=lambda r: r.hostname):
            status = rec.status(now, beat, settings.worker_retention)
            if status == "expired":
                continue  # autoscaled fleets: a worker gone for the worker retention leaves the metrics
            online = status == "online"
            labels = _source_label(source, hostname=rec.hostname)
            up.append((labels, 1.0 if online else 0.0))
            active.append((labels, float(len(rec.active)) if online else 0.0))
    metric("celery_worker_up", "gauge", "1 when the worker sent a heartbeat recently.", up)
    metric("celery_worker_tasks_active", "gauge", "Tasks the worker is running (its last heartbeat).", active)


def _stuck(ctx: ServerContext, metric: Exposition, now: float) -> None:
    from stemtrace.server import attention  # attention reads the store through the same API

    samples: list[tuple[str, float]] = []
    for source in _gauge_sources(ctx):
        try:
            found = attention.stuck_tasks_recent(ctx.store, ctx.settings.expected_heartbeat_interval, source)
        except Exception:
            return
        by_reason: dict[str, int] = {}
        for t in found:
            by_reason[t.reason] = by_reason.get(t.reason, 0) + 1
        reasons = sorted({*_REASONS, *by_reason})
        samples += [(_source_label(source, reason=r), float(by_reason.get(r, 0))) for r in reasons]
    metric(
        "stemtrace_tasks_stuck",
        "gauge",
        "Tasks that look stuck now, by reason (the definitions of /api/stuck).",
        samples,
    )


_REASONS = ("overdue", "unconsumed_queue", "eta_overdue", "not_started")  # core/stuck.py
