"""Tasks left STARTED on a worker that went offline become LOST (``Store.mark_lost``).

Plain functions over a writer inside its transaction, like ``seen`` and ``side_tables``;
``SqlStore`` only opens the transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.task import mark_lost as lose
from stemtrace.core.workers import WorkerRecord
from stemtrace.server.jsonfast import loads
from stemtrace.server.store.body import load_record, stored_log
from stemtrace.server.store.codec import chunks, marks
from stemtrace.server.store.summary import roll_up
from stemtrace.server.store.task_row import IDS, task_row, write_tasks

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

BATCH = 500  # tasks per call: the maintenance loop calls again while there are more


def mark_lost(w: BatchWriter, offline_after: float) -> int:
    """Mark up to ``BATCH`` tasks of offline workers LOST, their workflows rolled up again;
    returns how many. Whether a worker is online is ``WorkerRecord.is_online`` at ``w.now``,
    with a third of ``offline_after`` as the heartbeat interval of a worker that states none."""
    now = w.now
    gone: dict[str, float] = {}
    for hostname, detail in w.q("SELECT hostname, detail FROM workers"):
        worker = WorkerRecord.from_dict(loads(detail))
        if not worker.is_online(now, offline_after / 3):
            gone[hostname] = worker.offline_at if worker.shut_down and worker.offline_at else worker.last_seen
    if not gone:
        return 0
    # STARTED tasks first, by the state index, then their workers: a condition on ``worker`` in
    # the same query let SQLite pick the worker index instead, and read every task the offline
    # worker ever ran (1.2 CPU-s, the write lock held 3 s, every maintenance round on a store of
    # 1M tasks; docs/benchmarks-server.md, "Health and metrics"). Tasks running now are few.
    started = w.q("SELECT id, worker FROM tasks WHERE state = ?", [TaskState.STARTED.value])
    ids = [task_id for task_id, worker in started if worker in gone][:BATCH]
    if not ids:
        return 0
    found = w.q(
        f"SELECT workflow_id, sort_ts, worker, {IDS}, detail FROM tasks WHERE id IN ({marks(len(ids))})", ids
    )
    rows: list[list[Any]] = []
    workflows: set[str] = set()
    for workflow_id, sort_ts, worker_name, *task_ids, detail in found:
        raw = load_record(task_ids, detail)
        extra = raw.pop("_extra", {})
        record = lose(TaskRecord.from_dict(raw), f"worker {worker_name} went offline", gone[worker_name])
        rows.append(
            task_row(record, [], workflow_id, sort_ts, now, extra=extra, log=stored_log(task_ids, detail))
        )
        workflows.add(workflow_id)
    write_tasks(w, rows)
    for part in chunks(sorted(workflows)):
        roll_up(w, part)
    return len(rows)
