"""The API's JSON shapes (pydantic), and the one place core/store types map onto them.

These models are the HTTP contract: the committed ``frontend/openapi.json`` is
generated from them and the UI's types from that, so rename nothing casually.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from stemtrace.core.model import Attempt as CoreAttempt
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.server.store import TaskDetail as StoreTaskDetail
from stemtrace.server.store import TaskRow, WorkflowRow


def iso(ts: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (rendered ISO-8601 by pydantic)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class ErrorInfo(BaseModel):
    status: int
    message: str
    detail: Any = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class TaskSummary(BaseModel):
    id: str
    name: str | None
    state: TaskState
    workflow_id: str | None
    parent_id: str | None
    root_id: str | None
    group_id: str | None
    worker: str | None
    queue: str | None = Field(description="the queue the message was routed to")
    routing_key: str | None = Field(None, description="the routing key it was sent with")
    retries: int
    sent_at: datetime | None
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    runtime_ms: float | None
    exception_type: str | None
    args_preview: str | None = None


class AttemptSpanOut(BaseModel):
    number: int
    state: TaskState
    worker: str | None
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


# An attempt's span plus its outcome (the task page); graph nodes carry only the span.
class AttemptOut(AttemptSpanOut):
    runtime_ms: float | None
    exception_type: str | None
    exception: str | None
    traceback: str | None
    lost_reason: str | None = None
    retry_eta: str | None = None
    redelivered: bool = False
    exception_truncated: bool = Field(False, description="`exception` is a preview of a longer message")
    exception_original_size: int | None = Field(None, description="bytes of the message before it was cut")
    traceback_truncated: bool = Field(
        False, description="`traceback` is a preview: its head and its tail, the middle cut"
    )
    traceback_original_size: int | None = Field(None, description="bytes of the traceback before it was cut")
    handler_ms: float | None = Field(
        None, description="time in on_success/after_return handlers after the body (not in runtime_ms)"
    )


class ChildTask(BaseModel):
    id: str
    name: str | None
    state: TaskState


class TaskDetail(TaskSummary):
    names: list[str]
    args: Any = None
    kwargs: Any = None
    args_repr: str | None = None
    kwargs_repr: str | None = None
    result: Any = None
    exception: str | None
    traceback: str | None
    exception_truncated: bool = Field(False, description="`exception` is a preview of a longer message")
    exception_original_size: int | None = Field(None, description="bytes of the message before it was cut")
    traceback_truncated: bool = Field(
        False, description="`traceback` is a preview: its head and its tail, the middle cut"
    )
    traceback_original_size: int | None = Field(None, description="bytes of the traceback before it was cut")
    handler_ms: float | None = Field(
        None, description="time in on_success/after_return handlers after the body (not in runtime_ms)"
    )
    eta: str | None = None
    expires: str | None = None
    exchange: str | None = None
    group_index: int | None = None
    attempts: list[AttemptOut]
    events: list[dict[str, Any]]
    children: list[str] = Field(description="ids of every task whose parent is this one, oldest first")
    child_tasks: list[ChildTask] = Field(
        description="the first 1,000 of `children`, in the same order, with name and state"
    )
    child_count: int = Field(description="how many children there are (the length of `children`)")


class TaskPage(BaseModel):
    items: list[TaskSummary]
    next_cursor: str | None


class WorkflowSummary(BaseModel):
    id: str
    name: str | None
    state: WorkflowState
    task_count: int
    counts: dict[str, int]
    started_at: datetime | None
    finished_at: datetime | None


class WorkflowPage(BaseModel):
    items: list[WorkflowSummary]
    next_cursor: str | None


class NodeOut(BaseModel):
    id: str
    name: str | None
    state: TaskState
    attempts: int
    worker: str | None
    queue: str | None
    sent_at: datetime | None
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    runtime_ms: float | None
    exception_type: str | None
    parent_id: str | None
    group_id: str | None
    group_index: int | None
    plumbing: bool
    attempt_spans: list[AttemptSpanOut] | None = Field(
        description="one span per attempt, oldest first, when the task ran more than once (retried or "
        "redelivered); null for a single attempt, whose span is the node's own received/started/finished_at"
    )


class EdgeOut(BaseModel):
    source: str
    target: str
    kind: str = Field(description="spawn | chain | chord | link | errback | replace")


class GroupOut(BaseModel):
    id: str
    kind: Literal["group", "chord"]
    members: list[str]
    callback: str | None


class WorkflowGraphOut(WorkflowSummary):
    root_id: str | None
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    groups: list[GroupOut]


class WorkerOut(BaseModel):
    hostname: str
    online: bool
    last_heartbeat: datetime | None
    online_at: datetime | None
    offline_at: datetime | None
    active: int
    active_tasks: list[str]
    processed: int | None
    registered: list[str]
    queues: list[str]
    pool: str | None
    concurrency: int | None
    pid: int | None
    loadavg: list[float] | None
    versions: dict[str, Any] | None


class WorkerList(BaseModel):
    items: list[WorkerOut]


class TaskName(BaseModel):
    name: str
    count: int


class TaskNameList(BaseModel):
    items: list[TaskName]


class FailureGroup(BaseModel):
    name: str | None
    exception_type: str | None
    count: int
    last_seen: datetime | None
    last_task_id: str
    sample_message: str | None


class FailureList(BaseModel):
    items: list[FailureGroup]


class SeriesPoint(BaseModel):
    t: datetime
    succeeded: int
    failed: int


class TaskStats(BaseModel):
    name: str
    total: int
    succeeded: int
    failed: int
    failure_rate: float
    runtime_p50_ms: float | None
    runtime_p95_ms: float | None
    series: list[SeriesPoint]


class TaskStatsList(BaseModel):
    items: list[TaskStats]


class StuckOut(BaseModel):
    task_id: str
    name: str | None
    state: TaskState
    reason: str = Field(description="overdue | unconsumed_queue")
    detail: str
    since: datetime | None


class StuckList(BaseModel):
    items: list[StuckOut]


class Subscription(BaseModel):
    """One store's subscription on the event broker (Redis consumer group, RabbitMQ queue)."""

    name: str
    own: bool = Field(description="this server's store consumes through it")
    consumers: int | None = None
    pending: int | None = Field(None, description="delivered, not yet acknowledged (Redis)")
    lag: int | None = Field(None, description="messages waiting for it")
    position: str | None = Field(None, description="last delivered stream entry (Redis)")
    last_heard_s: float | None = Field(None, description="seconds since its server announced it (RabbitMQ)")


class Retention(BaseModel):
    """The retention in force, and whether it keeps up."""

    retention_s: float
    failure_retention_s: float
    max_tasks: int | None
    expired_workflows: int
    evicted_workflows: int
    behind: bool = Field(description="the last round ran out of time with expired workflows left")
    last_run_at: datetime | None


class IngestHealth(BaseModel):
    enabled: bool
    status: str
    error: str | None
    source: str | None
    events: int
    stored: int
    batches: int
    rate_per_s: float
    lag: int | None
    last_commit_at: datetime | None
    malformed: dict[str, int]
    subscription: str | None = Field(None, description="this store's subscription on the broker")
    subscriptions: list[Subscription] = Field(
        default_factory=list, description="every subscription seen on the same broker, this one included"
    )


class StoreHealth(BaseModel):
    url: str
    ok: bool
    error: str | None
    schema_version: int
    workflows: int | None


class LibraryHealth(BaseModel):
    processes: int
    sent: int
    dropped: int
    errors: int
    sources: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    ingest: IngestHealth
    store: StoreHealth
    library: LibraryHealth
    retention: Retention | None = None


# -- mapping -------------------------------------------------------------------------------------


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
        retries=row.retries,
        sent_at=iso(row.sent_at),
        received_at=iso(row.received_at),
        started_at=iso(row.started_at),
        finished_at=iso(row.finished_at),
        runtime_ms=row.runtime_ms,
        exception_type=row.exception_type,
        args_preview=row.args_preview,
    )


def _attempt(a: CoreAttempt) -> AttemptOut:
    return AttemptOut(
        number=a.number,
        state=a.state,
        worker=a.worker,
        received_at=iso(a.received_at),
        started_at=iso(a.started_at),
        finished_at=iso(a.finished_at),
        runtime_ms=a.runtime_ms,
        exception_type=a.exception_type,
        exception=a.exception,
        traceback=a.traceback,
        lost_reason=a.lost_reason,
        retry_eta=a.retry_eta,
        redelivered=a.redelivered,
        exception_truncated=a.exception_original_size is not None,
        exception_original_size=a.exception_original_size,
        traceback_truncated=a.traceback_original_size is not None,
        traceback_original_size=a.traceback_original_size,
        handler_ms=a.handler_ms,
    )


def task_detail(d: StoreTaskDetail) -> TaskDetail:
    r = d.record
    summary = task_summary(d.row).model_dump()
    summary.update(state=r.state, routing_key=r.routing_key)
    return TaskDetail(
        **summary,
        names=list(r.names),
        args=r.args,
        kwargs=r.kwargs,
        args_repr=_text(d.extra.get("args_repr")),
        kwargs_repr=_text(d.extra.get("kwargs_repr")),
        result=r.result,
        exception=r.exception,
        traceback=r.traceback,
        exception_truncated=r.exception_original_size is not None,
        exception_original_size=r.exception_original_size,
        traceback_truncated=r.traceback_original_size is not None,
        traceback_original_size=r.traceback_original_size,
        handler_ms=r.handler_ms,
        eta=r.eta,
        expires=r.expires,
        exchange=r.exchange,
        group_index=r.group_index,
        attempts=[_attempt(a) for a in r.attempts],
        events=d.events,
        children=d.children,
        child_tasks=[ChildTask(id=c.id, name=c.name, state=TaskState(c.state)) for c in d.child_tasks],
        child_count=len(d.children),
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
    )


def worker_out(raw: dict[str, Any], online: bool) -> WorkerOut:
    hb = raw.get("heartbeat_at") or raw.get("online_at")
    return WorkerOut(
        hostname=raw["hostname"],
        online=online,
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
