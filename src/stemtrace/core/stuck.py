"""Flag tasks that look stuck. Pure: the server queries, this module judges.

Two kinds of stuck, both from the issue: a task ``STARTED`` far longer than its
task name usually runs (its p95 runtime), and a ``PENDING`` task sent to a queue
no online worker consumes (it will wait forever, and Celery says nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState

DEFAULT_FACTOR = 3.0  # "much longer": three times the usual slow case
DEFAULT_MIN_OVERDUE_MS = 60_000.0  # never flag a task running less than a minute
DEFAULT_MIN_SAMPLES = 20  # a p95 from fewer runs is noise
DEFAULT_QUEUE = "celery"


@dataclass(frozen=True, slots=True)
class StuckTask:
    task_id: str
    name: str | None
    state: TaskState
    reason: str  # "overdue" | "unconsumed_queue"
    detail: str
    since: float | None  # when it started (overdue) or was sent (unconsumed)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by the nearest-rank method; ``None`` when empty."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(q * len(data)))
    return data[min(rank, len(data)) - 1]


def runtime_p95(
    runtimes_ms: Mapping[str, Iterable[float]], *, min_samples: int = DEFAULT_MIN_SAMPLES
) -> dict[str, float]:
    """Per task name, the p95 of recent successful runtimes (names with too few runs are left out)."""
    out: dict[str, float] = {}
    for name, values in runtimes_ms.items():
        data = list(values)
        if len(data) >= min_samples:
            p95 = percentile(data, 0.95)
            if p95 is not None:
                out[name] = p95
    return out


def overdue_tasks(
    running: Iterable[TaskRecord],
    p95_ms: Mapping[str, float],
    now: float,
    *,
    factor: float = DEFAULT_FACTOR,
    min_overdue_ms: float = DEFAULT_MIN_OVERDUE_MS,
) -> list[StuckTask]:
    """``STARTED`` tasks running longer than ``factor`` x their name's p95 (and ``min_overdue_ms``)."""
    out: list[StuckTask] = []
    for record in running:
        if record.state is not TaskState.STARTED or record.name is None:
            continue
        started = record.attempts[-1].started_at if record.attempts else record.started_at
        p95 = p95_ms.get(record.name)
        if started is None or p95 is None:
            continue
        elapsed_ms = (now - started) * 1000.0
        limit = max(p95 * factor, min_overdue_ms)
        if elapsed_ms > limit:
            detail = f"running {elapsed_ms / 1000:.0f}s; p95 for {record.name} is {p95 / 1000:.1f}s"
            out.append(StuckTask(record.id, record.name, record.state, "overdue", detail, started))
    return out


def unconsumed_tasks(pending: Iterable[TaskRecord], online_queues: Iterable[str]) -> list[StuckTask]:
    """``PENDING`` tasks whose queue no online worker consumes."""
    consumed = set(online_queues)
    out: list[StuckTask] = []
    for record in pending:
        if record.state is not TaskState.PENDING:
            continue
        queue = record.queue or record.routing_key or DEFAULT_QUEUE
        if queue not in consumed:
            detail = f"no online worker consumes queue {queue!r}"
            out.append(
                StuckTask(record.id, record.name, record.state, "unconsumed_queue", detail, record.sent_at)
            )
    return out
