"""Aggregates over the stored tasks: task names, failure groups, per-task statistics.

They read the roll-ups ingest maintains (``store/rollups.py``), never the ``tasks`` table, so
their cost does not grow with the store (issue 21: ``/api/stats/tasks`` took 4.4 s at 520k
tasks when it scanned). Ranges are whole hours (``rollups_read``).
"""

from __future__ import annotations

from stemtrace.server.store.rollups_read import TaskMetrics, failures, task_metrics, task_names, task_stats

__all__ = ["TaskMetrics", "failures", "task_metrics", "task_names", "task_stats"]
