"""The API's JSON shapes (pydantic); ``mapping`` is the one place core/store types map onto them.

The server's own health (``/api/health``, quarantine, losses) is in ``health_schemas``.

These models are the HTTP contract: the committed ``frontend/openapi.json`` is
generated from them and the UI's types from that, so rename nothing casually.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from stemtrace.core.states import TaskState, WorkflowState


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
    source: str | None = Field(
        None, description="the event source's name (--source NAME=…); null with a single, unnamed source"
    )
    retries: int
    sent_at: datetime | None
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    runtime_ms: float | None
    exception_type: str | None
    args_preview: str | None = None
    eta: datetime | None = Field(
        None,
        description="when a task sent with an ETA or countdown is due; while it is PENDING, RECEIVED or "
        "RETRY it is scheduled for then, not stuck",
    )


class AttemptSpanOut(BaseModel):
    number: int
    state: TaskState
    worker: str | None
    received_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class RunOutcome(BaseModel):
    """What a task or an attempt ended with beyond its state: the exception's message and
    traceback (previews when long, with the sizes before they were cut) and the time its
    handlers took. One model, so the task and each attempt say it the same way."""

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


# An attempt's span plus its outcome (the task page); graph nodes carry only the span.
class AttemptOut(RunOutcome, AttemptSpanOut):
    runtime_ms: float | None
    exception_type: str | None
    lost_reason: str | None = None
    retry_eta: str | None = None
    redelivered: bool = False
    outcome_from: str | None = Field(
        None,
        description="`main` when the outcome is what the worker's main process got from the prefork "
        "child, which was killed before it sent its own events: no result value, no handler time, "
        "and the start is when the child accepted the task",
    )
    trace_id: str | None = Field(
        None,
        description="W3C trace id (32 hex) of the attempt, from OpenTelemetry's context (docs: Integrations)",
    )
    span_id: str | None = Field(
        None, description="the worker's span (16 hex) when it failed or retried, else the sender's span"
    )
    sentry_trace_id: str | None = Field(None, description="Sentry's trace id of the attempt (32 hex)")
    sentry_event_id: str | None = Field(
        None, description="the event Sentry captured for this failure (32 hex)"
    )
    trace_url: str | None = Field(None, description="the attempt in the tracing UI (--trace-url), when set")
    sentry_url: str | None = Field(None, description="the attempt in Sentry (--sentry-url), when set")


class ChildTask(BaseModel):
    id: str
    name: str | None
    state: TaskState


class TaskDetail(RunOutcome, TaskSummary):
    names: list[str]
    args: Any = None
    kwargs: Any = None
    args_repr: str | None = None
    kwargs_repr: str | None = None
    result: Any = None
    expires: str | None = None
    exchange: str | None = None
    beat_entry: str | None = Field(
        None, description="the celery beat schedule entry that sent it (see /api/beat)"
    )
    group_index: int | None = None
    attempts: list[AttemptOut]
    events: list[dict[str, Any]]
    children: list[str] = Field(description="ids of every task whose parent is this one, oldest first")
    child_tasks: list[ChildTask] = Field(
        description="the first 1,000 of `children`, in the same order, with name and state"
    )
    child_count: int = Field(description="how many children there are (the length of `children`)")
    skipped_reason: str | None = Field(
        None, description="a SKIPPED step (known from its workflow's canvas, never sent): why it never runs"
    )
    skipped_by: str | None = Field(
        None, description="a SKIPPED step: the id of the task that decided it (the upstream one that stopped)"
    )


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
    scheduled_for: datetime | None = Field(
        None,
        description="set while every unfinished task waits for its ETA/countdown (planned steps behind "
        "them aside): the earliest ETA. `state` stays RUNNING; nothing runs until then",
    )
    shape: str | None = Field(
        None,
        description='the workflow named by its shape, e.g. "chord: score_item \u00d7500 → summarize", '
        '"group: resize \u00d720", "chain: fetch → parse → store"; null for a lone task or a plain tree',
    )
    source: str | None = Field(
        None,
        description="the event source its tasks came from (--source NAME=…); "
        "null with a single, unnamed source",
    )


class WorkflowPage(BaseModel):
    items: list[WorkflowSummary]
    next_cursor: str | None


class CollapsedOut(BaseModel):
    count: int = Field(description="how many tasks the node stands for")
    counts: dict[str, int] = Field(description="those tasks by state, every state listed")
    member_ids: list[str] = Field(
        description="a sample of member ids (at most 100): failed first, then unfinished, then the rest, "
        "each in send order; list them all with /api/tasks?workflow=<id>&state=..."
    )
    parent_id: str | None = Field(description="the task that sent them, for spawned siblings")
    group_id: str | None = Field(description="the group they are members of, for a group or chord header")


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
    skipped_reason: str | None = Field(None, description="a SKIPPED step: why it will never run")
    skipped_by: str | None = Field(None, description="a SKIPPED step: the task that decided it")
    collapsed: CollapsedOut | None = Field(
        None,
        description="set when this node stands for many sibling tasks (a huge workflow's fan-out, "
        "collapsed by the server): `id` is then no task id",
    )
    eta: datetime | None = Field(None, description="when a task sent with an ETA or countdown is due")


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
    events_may_be_missing: bool = Field(
        False,
        description="a loss (a sequence gap, see /api/health `losses`) from a process that sent some of "
        "this workflow's events overlaps its time: the graph may miss tasks or show stale states",
    )
    root_id: str | None
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    groups: list[GroupOut]
    collapsed_tasks: int = Field(
        0, description="how many tasks are drawn inside collapsed nodes (0: every task is its own node)"
    )


class WorkerOut(BaseModel):
    hostname: str
    online: bool
    status: Literal["online", "offline", "expired"] = Field(  # WorkerStatus
        "online",
        description="offline: recently (within --worker-retention); expired: offline for longer",
    )
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
    expired: int = Field(0, description="workers left out because they expired (see ?expired=true)")


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
    failed: int = Field(description="failed, lost or rejected (Reject without requeue): work not done")
    revoked: int = Field(0, description="revoked or expired before they ran")
    retried: int = Field(0, description="tasks that retried at least once (a retry storm shows here)")
    retries: int = Field(0, description="retries in all: a task retried three times counts three")
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
    reason: str = Field(description="overdue | unconsumed_queue | eta_overdue | not_started")
    detail: str
    since: datetime | None


class StuckList(BaseModel):
    items: list[StuckOut]
