"""What needs attention now: one definition, shared by ``/api/stuck`` and the alert rules.

Each finding is an :class:`Incident` with a stable ``key`` (the same failure group, stuck task or
offline worker always has the same key, so alerts can be deduplicated across evaluations and
replicas) and the UI path that shows exactly it. Reads only the store; the judgments are pure
(:mod:`stemtrace.core.stuck`). Each finder about tasks, workflows or workers takes ``source``:
only what came from that event source (``--source NAME``), as the pages' ``source=`` filter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.core.stuck import StuckTask, overdue_tasks, unconsumed_tasks, waiting_tasks
from stemtrace.core.workers import WorkerRecord
from stemtrace.server import beat_runs
from stemtrace.server.store import Store, TaskQuery, WorkflowQuery
from stemtrace.server.store.base import TaskRow
from stemtrace.server.ttl_cache import PerStore

STALE_AFTER_S = 60.0  # a task must sit unchanged this long before it is judged at all
SCAN = 500  # bounded reads: the attention view never scans a big table
DETAIL_READS = 100  # RECEIVED tasks whose ETA is read from their detail


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str  # failure_group | lost | stuck | workflow_failed | worker_offline | beat_missed
    key: str  # stable: the same incident always has the same key
    title: str
    detail: str
    path: str  # the UI page that shows exactly this
    at: float | None
    count: int = 1
    name: str | None = None  # the task (or root task) name, for rule filters
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the event source it was found in, when scoped to one


def _tasks_path(**params: Any) -> str:
    return "/tasks?" + urlencode({k: v for k, v in params.items() if v is not None})


def _record(r: TaskRow) -> TaskRecord:
    return TaskRecord(
        id=r.id,
        name=r.name,
        state=TaskState(r.state),
        queue=r.queue,
        routing_key=r.routing_key,
        sent_at=r.sent_at,
        received_at=r.received_at,
        started_at=r.started_at,
        worker=r.worker,
    )


def workers(
    store: Store, now: float, heartbeat_interval: float, source: str | None = None
) -> list[tuple[WorkerRecord, bool]]:
    """Every stored worker with whether it counts as online now."""
    out = []
    for raw in store.list_workers(source):
        rec = WorkerRecord.from_dict(raw)
        out.append((rec, rec.is_online(now, heartbeat_interval)))
    return out


def stuck_tasks(
    store: Store, now: float, heartbeat_interval: float, source: str | None = None
) -> list[StuckTask]:
    """Tasks that look stuck, by the four definitions of :mod:`stemtrace.core.stuck`."""
    older = now - STALE_AFTER_S
    running = [_record(r) for r in store.stale_tasks([TaskState.STARTED], older, SCAN, source)]
    pending = [_record(r) for r in store.stale_tasks([TaskState.PENDING], older, SCAN, source)]
    p95 = {
        r["name"]: r["runtime_p95_ms"]
        for r in store.task_stats(now - 86400.0, now, None, 1, source=source)
        if r["runtime_p95_ms"] is not None and r["succeeded"] >= 20
    }
    seen = workers(store, now, heartbeat_interval, source)
    found = overdue_tasks(running, p95, now)
    if any(online for _, online in seen):
        online_queues = {q for rec, online in seen if online for q in rec.queues}
        found += unconsumed_tasks(pending, online_queues)
    received = []
    for row in store.stale_tasks([TaskState.RECEIVED], older, DETAIL_READS, source):
        detail = store.get_task(row.id)
        if detail is not None:
            received.append(detail.record)
    found += waiting_tasks(received, now)
    return found


STUCK_GAUGE_TTL_S = 10.0


def _stuck_now(store: Store, heartbeat_interval: float, source: str | None) -> list[StuckTask]:
    return stuck_tasks(store, time.time(), heartbeat_interval, source)


_stuck_gauges: dict[tuple[float, str | None], PerStore[list[StuckTask]]] = {}


def stuck_tasks_recent(store: Store, heartbeat_interval: float, source: str | None = None) -> list[StuckTask]:
    """:func:`stuck_tasks` as judged at most :data:`STUCK_GAUGE_TTL_S` seconds ago, for
    ``/metrics``: a task is judged only after ``STALE_AFTER_S`` (60 s) unchanged, so 10 s add
    little, and a scrape no longer pays the three state reads each time (on PostgreSQL ~25 ms
    at 500,000 tasks, the state index holding every task that passed through a state since the
    last vacuum). ``/api/stuck`` judges afresh."""
    key = (heartbeat_interval, source)
    cache = _stuck_gauges.get(key)
    if cache is None:
        cache = _stuck_gauges.setdefault(
            key, PerStore(STUCK_GAUGE_TTL_S, lambda s: _stuck_now(s, heartbeat_interval, source))
        )
    return cache.get(store)


def stuck_incidents(
    store: Store, now: float, heartbeat_interval: float, source: str | None = None
) -> list[Incident]:
    return [
        Incident(
            kind="stuck",
            key=f"stuck:{t.reason}:{t.task_id}",
            title=f"{t.name or 'a task'} looks stuck ({t.reason})",
            detail=t.detail,
            path=f"/tasks/{quote(t.task_id, safe='')}",
            at=t.since,
            name=t.name,
            extra={"reason": t.reason, "task_id": t.task_id, "state": t.state.value},
            source=source,
        )
        for t in stuck_tasks(store, now, heartbeat_interval, source)
    ]


def failure_groups(store: Store, since: float, now: float, source: str | None = None) -> list[Incident]:
    """Failures grouped by task name and exception type over ``since``..``now``."""
    out = []
    for g in store.failures(since, now, None, 200, source=source):
        key = f"failure_group:{g['name']}|{g['exception_type']}" + (f"@{source}" if source else "")
        path = _tasks_path(
            state="FAILURE", name=g["name"], exception_type=g["exception_type"], source=source or None
        )
        message = (g.get("sample_message") or "").splitlines()[:1]
        out.append(
            Incident(
                kind="failure_group",
                key=key,
                title=f"{g['name'] or '?'} failed with {g['exception_type'] or '?'}",
                detail=f"{g['count']} failures; last: {message[0][:200] if message else ''}",
                path=path,
                at=g.get("last_seen"),
                count=int(g["count"]),
                name=g["name"],
                extra={"exception_type": g["exception_type"], "last_task_id": g.get("last_task_id")},
                source=source,
            )
        )
    return out


def lost_tasks(store: Store, since: float, source: str | None = None) -> list[Incident]:
    page = store.list_tasks(TaskQuery(states=(TaskState.LOST,), since=since, limit=SCAN, source=source))
    return [
        Incident(
            kind="lost",
            key=f"lost:{r.id}",
            title=f"{r.name or 'a task'} was lost",
            detail=f"its worker {r.worker or '?'} went away while it ran",
            path=f"/tasks/{quote(r.id, safe='')}",
            at=r.finished_at or r.started_at,
            name=r.name,
            extra={"task_id": r.id, "worker": r.worker},
            source=source,
        )
        for r in page.items
    ]


def failed_workflows(store: Store, since: float, source: str | None = None) -> list[Incident]:
    query = WorkflowQuery(states=(WorkflowState.FAILURE,), since=since, limit=SCAN, source=source)
    page = store.list_workflows(query)
    return [
        Incident(
            kind="workflow_failed",
            key=f"workflow_failed:{w.id}",
            title=f"workflow {w.name or w.id} failed",
            detail=", ".join(f"{n} {s}" for s, n in sorted(w.counts.items())),
            path=f"/workflows/{quote(w.id, safe='')}",
            at=w.finished_at,
            count=w.task_count,
            name=w.name,
            extra={"workflow_id": w.id},
            source=source,
        )
        for w in page.items
    ]


def offline_workers(
    store: Store, now: float, heartbeat_interval: float, since: float, source: str | None = None
) -> list[Incident]:
    """Workers that went offline (or stopped heart-beating) since ``since`` with tasks still on them."""
    out = []
    for rec, online in workers(store, now, heartbeat_interval, source):
        if online or not rec.active:
            continue
        went = rec.offline_at or rec.last_seen
        if went < since:
            continue
        out.append(
            Incident(
                kind="worker_offline",
                key=f"worker_offline:{rec.hostname}:{went:.0f}",
                title=f"worker {rec.hostname} went offline with {len(rec.active)} task(s) on it",
                detail="tasks: " + ", ".join(rec.active[:10]),
                path="/workers",
                at=went,
                count=len(rec.active),
                extra={"hostname": rec.hostname, "tasks": list(rec.active)},
                source=source,
            )
        )
    return out


def event_losses(store: Store, since: float) -> list[Incident]:
    """Events lost (sequence gaps, library buffer overflow) or quarantined since ``since``."""
    out = []
    report = store.loss_report(since)
    for loss in report.get("latest", []):
        if loss["detected_at"] < since:
            continue
        source = f"{loss.get('host') or '?'} pid {loss.get('pid') or '?'}"
        out.append(
            Incident(
                kind="events_lost",
                key=f"events_lost:{loss['cause']}:{loss['inst']}",
                title=f"{loss['count']} events lost from {source}",
                detail=f"cause: {loss['cause']}",
                path="/",
                at=loss["detected_at"],
                count=int(loss["count"]),
                extra={"cause": loss["cause"]},
            )
        )
    for entry in store.quarantine():
        if entry["last_seen"] < since:
            continue
        out.append(
            Incident(
                kind="events_lost",
                key=f"quarantined:{entry['reason']}:{entry['kind']}",
                title=f"events quarantined ({entry['reason']})",
                detail=str(entry.get("detail") or "")[:200],
                path="/",
                at=entry["last_seen"],
                count=int(entry["count"]),
                extra={"reason": entry["reason"]},
            )
        )
    return out


def beat_missed(store: Store, now: float, since: float, source: str | None = None) -> list[Incident]:
    """Celery beat runs missed since ``since``: one incident per gap (``core.beat``), keyed by the
    entry (and its source, when it has one) and the run before it, so a gap is one incident
    while open and after beat resumes."""
    out = []
    for view in beat_runs.overview(store, now, since, source):
        entry = f"{view.source}:{view.entry}" if view.source else view.entry
        query = {"entry": view.entry, **({"source": view.source} if view.source else {})}
        for m in view.missed:
            if m.due < since and m.before is not None:
                continue
            state = "still none sent" if m.before is None else "runs resumed"
            every = f"{view.interval:.0f}s" if view.interval else "?"
            out.append(
                Incident(
                    kind="beat_missed",
                    key=f"beat_missed:{entry}:{m.after:.3f}",
                    title=f"beat entry {view.entry} missed {m.missed} run(s)",
                    detail=f"expected every {every}; {state}",
                    path="/beat?" + urlencode(query),
                    at=m.due,
                    count=m.missed,
                    name=view.task_name,
                    extra={"entry": view.entry, "interval_s": view.interval, "open": m.before is None},
                )
            )
    return out
