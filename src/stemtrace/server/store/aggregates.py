"""Aggregates over the stored tasks: task names, failure groups, per-task statistics, the
metrics' totals, and the stale tasks and workers the attention view judges.

They read the roll-ups ingest maintains (``store/rollups.py``), never the ``tasks`` table, so
their cost does not grow with the store (issue 21: ``/api/stats/tasks`` took 4.4 s at 520k
tasks when it scanned). Ranges are whole hours (``rollups_read``). Each takes ``source``: only
what came from that event source (``--source NAME``); None reads every source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from stemtrace.core.states import TaskState
from stemtrace.server.store import rollups_read
from stemtrace.server.store.base import TaskRow
from stemtrace.server.store.read import Reader
from stemtrace.server.store.rollups_read import TaskMetrics

__all__ = ["AggregateReads", "TaskMetrics"]
Source = str | None


class AggregateReads:
    """The aggregate reads of :class:`~stemtrace.server.store.sql.SqlStore`, each on one pooled
    connection (``_read``)."""

    def _read(self) -> AbstractContextManager[Reader]:
        raise NotImplementedError

    def task_names(self, source: Source = None) -> list[tuple[str, int]]:
        with self._read() as r:
            return rollups_read.task_names(r, source)

    def failures(
        self, since: float | None, until: float | None, name: str | None, limit: int, *, source: Source = None
    ) -> list[dict[str, Any]]:
        with self._read() as r:
            return rollups_read.failures(r, since, until, name, limit, source=source)

    def task_stats(
        self, since: float, until: float, name: str | None, buckets: int, *, source: Source = None
    ) -> list[dict[str, Any]]:
        with self._read() as r:
            return rollups_read.task_stats(r, since, until, name, buckets, source=source)

    def task_metrics(self, now: float) -> TaskMetrics:
        with self._read() as r:
            return rollups_read.task_metrics(r, now)

    def stale_tasks(
        self, states: Sequence[TaskState], older_than: float, limit: int, source: Source = None
    ) -> list[TaskRow]:
        with self._read() as r:
            return r.stale_tasks(list(states), older_than, limit, source)

    def list_workers(self, source: Source = None) -> list[dict[str, Any]]:
        where = " WHERE source = ?" if source is not None else ""
        with self._read() as r:
            rows = r.q(f"SELECT detail FROM workers{where} ORDER BY hostname", [source] if where else [])
        return [json.loads(d) for (d,) in rows]
