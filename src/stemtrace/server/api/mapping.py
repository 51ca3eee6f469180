"""The one place core and store types map onto the API's JSON shapes (``schemas``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from stemtrace.core.model import Attempt as CoreAttempt
from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.core.tracing import LinkTemplates, TraceIds
from stemtrace.server.api.schemas import (
    AttemptOut,
    ChildTask,
    TaskDetail,
    TaskSummary,
    WorkerOut,
    WorkflowSummary,
)
from stemtrace.server.store import TaskDetail as StoreTaskDetail
from stemtrace.server.store import TaskRow, WorkflowRow

NO_LINKS = LinkTemplates()


def iso(ts: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (rendered ISO-8601 by pydantic)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def task_summary(row: TaskRow) -> TaskSummary:
    return TaskSummary(
        id=row.id,
        name=row.name,
        state=TaskState(row.state),
        workflow_id=row.workflow_id,
        parent_id=row.parent_id,
        root_id=row.root_id,
        group_id=row.group_id,
        worker=row.worker,
        queue=row.queue,
        routing_key=row.routing_key,
        source=row.source or None,
        retries=row.retries,
        sent_at=iso(row.sent_at),
        received_at=iso(row.received_at),
        started_at=iso(row.started_at),
        finished_at=iso(row.finished_at),
        runtime_ms=row.runtime_ms,
        exception_type=row.exception_type,
        args_preview=row.args_preview,
        eta=iso(row.eta),
    )


def run_outcome(o: CoreAttempt | TaskRecord) -> dict[str, Any]:
    """The fields of ``RunOutcome`` from a task or one attempt (both carry them by the same names)."""
    return {
        "exception": o.exception,
        "traceback": o.traceback,
        "exception_truncated": o.exception_original_size is not None,
        "exception_original_size": o.exception_original_size,
        "traceback_truncated": o.traceback_original_size is not None,
        "traceback_original_size": o.traceback_original_size,
        "handler_ms": o.handler_ms,
    }


def _attempt(a: CoreAttempt, task_id: str, links: LinkTemplates) -> AttemptOut:
    ids = TraceIds(a.trace_id, a.span_id, a.sentry_trace_id, a.sentry_event_id)
    trace_url, sentry_url = links.links(task_id, ids)
    return AttemptOut(
        number=a.number,
        state=a.state,
        worker=a.worker,
        received_at=iso(a.received_at),
        started_at=iso(a.started_at),
        finished_at=iso(a.finished_at),
        runtime_ms=a.runtime_ms,
        exception_type=a.exception_type,
        lost_reason=a.lost_reason,
        retry_eta=a.retry_eta,
        redelivered=a.redelivered,
        outcome_from=a.outcome_from,
        **run_outcome(a),
        trace_id=a.trace_id,
        span_id=a.span_id,
        sentry_trace_id=a.sentry_trace_id,
        sentry_event_id=a.sentry_event_id,
        trace_url=trace_url,
        sentry_url=sentry_url,
    )


def task_detail(d: StoreTaskDetail, links: LinkTemplates = NO_LINKS) -> TaskDetail:
    r = d.record
    summary = task_summary(d.row).model_dump()
    summary.update(state=r.state, routing_key=r.routing_key, eta=iso(r.eta_at))
    return TaskDetail(
        **summary,
        names=list(r.names),
        args=r.args,
        kwargs=r.kwargs,
        args_repr=_text(d.extra.get("args_repr")),
        kwargs_repr=_text(d.extra.get("kwargs_repr")),
        result=r.result,
        **run_outcome(r),
        expires=r.expires,
        exchange=r.exchange,
        beat_entry=r.beat_entry,
        group_index=r.group_index,
        attempts=[_attempt(a, r.id, links) for a in r.attempts],
        events=d.events,
        children=d.children,
        child_tasks=[ChildTask(id=c.id, name=c.name, state=TaskState(c.state)) for c in d.child_tasks],
        child_count=len(d.children),
        skipped_reason=_text(d.extra.get("skipped_reason")),
        skipped_by=_text(d.extra.get("skipped_by")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def workflow_summary(row: WorkflowRow) -> WorkflowSummary:
    return WorkflowSummary(
        id=row.id,
        name=row.name,
        state=WorkflowState(row.state),
        task_count=row.task_count,
        counts={k: int(v) for k, v in row.counts.items()},
        started_at=iso(row.started_at),
        finished_at=iso(row.finished_at),
        scheduled_for=iso(row.scheduled_for),
        shape=row.shape,
        source=row.source or None,
    )


WorkerStatus = Literal["online", "offline", "expired"]


def worker_out(raw: dict[str, Any], online: bool, status: WorkerStatus | None = None) -> WorkerOut:
    hb = raw.get("heartbeat_at") or raw.get("online_at")
    return WorkerOut(
        hostname=raw["hostname"],
        online=online,
        status=status or ("online" if online else "offline"),
        last_heartbeat=iso(hb),
        online_at=iso(raw.get("online_at")),
        offline_at=iso(raw.get("offline_at")),
        active=len(raw.get("active") or []),
        active_tasks=list(raw.get("active") or []),
        processed=raw.get("processed"),
        registered=list(raw.get("registered") or []),
        queues=list(raw.get("queues") or []),
        pool=raw.get("pool"),
        concurrency=raw.get("concurrency"),
        pid=raw.get("pid"),
        loadavg=raw.get("loadavg"),
        versions=raw.get("versions"),
    )
