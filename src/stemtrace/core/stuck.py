"""Flag tasks that look stuck. Pure: the server queries, this module judges.

Four kinds, each a different operational cause:

* ``overdue``: ``STARTED`` far longer than its task name usually runs (its p95 runtime);
* ``unconsumed_queue``: ``PENDING`` on a queue no online worker consumes (it will wait forever,
  and Celery says nothing);
* ``eta_overdue``: ``RECEIVED`` with an ETA/countdown that passed a while ago without a start
  (the worker holds it but cannot run it: a full pool, a blocked thread);
* ``not_started``: ``RECEIVED`` without an ETA and not started long after it was received (stuck
  in a worker's prefetch behind long tasks, or a pool that stopped taking work).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stemtrace.core.model import TaskRecord, eta_seconds

__all__ = [
    "StuckTask",
    "eta_seconds",
    "overdue_tasks",
    "percentile",
    "runtime_p95",
    "unconsumed_tasks",
    "waiting_tasks",
]
from stemtrace.core.states import TaskState

DEFAULT_FACTOR = 3.0  # "much longer": three times the usual slow case
DEFAULT_MIN_OVERDUE_MS = 60_000.0  # never flag a task running less than a minute
DEFAULT_MIN_SAMPLES = 20  # a p95 from fewer runs is noise
DEFAULT_QUEUE = "celery"
DEFAULT_ETA_GRACE_S = 60.0  # an ETA task not started a minute after it was due
DEFAULT_RESERVED_LIMIT_S = 600.0  # a received task not started ten minutes later


@dataclass(frozen=True, slots=True)
class StuckTask:
    task_id: str
    name: str | None
    state: TaskState
    reason: str  # "overdue" | "unconsumed_queue" | "eta_overdue" | "not_started"
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


def waiting_tasks(
    received: Iterable[TaskRecord],
    now: float,
    *,
    eta_grace_s: float = DEFAULT_ETA_GRACE_S,
    reserved_limit_s: float = DEFAULT_RESERVED_LIMIT_S,
) -> list[StuckTask]:
    """``RECEIVED`` tasks a worker holds but does not run: past their ETA, or long after receipt.

    A task scheduled for later (ETA or countdown) is not stuck before its time: it is scheduled.
    """
    out: list[StuckTask] = []
    for record in received:
        if record.state is not TaskState.RECEIVED:
            continue
        due = eta_seconds(record.eta)
        if due is not None:
            if now - due > eta_grace_s:
                detail = f"due {now - due:.0f}s ago (ETA {record.eta}) and not started"
                out.append(StuckTask(record.id, record.name, record.state, "eta_overdue", detail, due))
            continue
        if record.received_at is not None and now - record.received_at > reserved_limit_s:
            waited = now - record.received_at
            detail = f"received by {record.worker or 'a worker'} {waited:.0f}s ago and not started"
            out.append(
                StuckTask(record.id, record.name, record.state, "not_started", detail, record.received_at)
            )
    return out
