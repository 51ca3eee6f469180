"""Read models the core produces from events: tasks, attempts, workflow graphs.

These are the only shapes the server stores and the API maps to JSON, so they are
plain frozen dataclasses with a lossless ``to_dict``/``from_dict`` round trip.
Timestamps are epoch seconds (floats) from the events; the API renders ISO-8601.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Protocol

from stemtrace.core.states import TaskState, WorkflowState


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a task id: a retry or a redelivery starts a new one."""

    number: int  # 1-based: Celery's ``retries`` + 1 (+ redeliveries)
    state: TaskState
    worker: str | None = None
    received_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    runtime_ms: float | None = None
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    lost_reason: str | None = None  # why the attempt became LOST
    retry_eta: str | None = None  # when the retry this attempt asked for is due
    redelivered: bool = False
    # The size in bytes of the message / traceback the library cut to a preview (``exception``,
    # ``traceback`` then hold the preview); ``None`` when they are whole.
    exception_original_size: int | None = None
    traceback_original_size: int | None = None
    # Milliseconds spent after the body, in the task's ``on_success``/``after_return``
    # handlers: ``runtime_ms`` is Celery's own measure of the body and excludes them.
    handler_ms: float | None = None
    # "main" when the outcome is what the worker's main process got from the prefork child
    # (``task.ready``): the child was killed before it sent its own events, so Celery's runtime
    # and the exception are known but not the result value, the handler time or the start.
    outcome_from: str | None = None
    # Where this attempt shows up in the team's tracing and Sentry (``core.tracing``): the W3C
    # trace and span (the worker's span when it failed or retried under OpenTelemetry, else the
    # sender's, its parent), Sentry's trace and the event Sentry captured for the failure.
    trace_id: str | None = None
    span_id: str | None = None
    sentry_trace_id: str | None = None
    sentry_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task id's current state, folded from all its events in any order.

    ``canvas``/``publisher_task_id`` and the structural ids come from the publish (or,
    for tasks sent by uninstrumented processes, the receive) so the workflow builder
    needs nothing but records. ``names`` keeps every name the id carried
    (``task.replace()`` reuses an id for another task).
    """

    id: str
    name: str | None
    state: TaskState
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    publisher_task_id: str | None = None
    replaced_task_nesting: int = 0
    names: tuple[str, ...] = ()
    worker: str | None = None
    queue: str | None = None
    routing_key: str | None = None
    exchange: str | None = None
    # The celery beat schedule entry that sent it (``core.task.beat_entry``), None for other tasks.
    beat_entry: str | None = None
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    sent_at: float | None = None
    received_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    runtime_ms: float | None = None
    exception_type: str | None = None
    exception: str | None = None
    traceback: str | None = None
    exception_original_size: int | None = None  # see Attempt
    traceback_original_size: int | None = None
    handler_ms: float | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None
    # Every distinct canvas summary seen on this id's messages, oldest first
    # (a replaced id carries the replacement's canvas too).
    canvases: tuple[Mapping[str, Any], ...] = ()
    attempts: tuple[Attempt, ...] = ()
    updated_at: float | None = None  # latest event ts; drives retention and "changed since"

    @property
    def eta_at(self) -> float | None:
        """``eta`` as epoch seconds (``None`` when absent or unreadable): what graphs compare."""
        return eta_seconds(self.eta)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        out["names"] = list(self.names)
        out["canvases"] = [dict(c) for c in self.canvases]
        out["attempts"] = [{**asdict(a), "state": a.state.value} for a in self.attempts]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TaskRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["state"] = TaskState(values.get("state", TaskState.PENDING.value))
        values["names"] = tuple(values.get("names") or ())
        values["canvases"] = tuple(values.get("canvases") or ())
        attempt_fields = {f.name for f in fields(Attempt)}
        values["attempts"] = tuple(
            Attempt(**{**{k: v for k, v in a.items() if k in attempt_fields}, "state": TaskState(a["state"])})
            for a in values.get("attempts") or ()
        )
        return cls(**values)


def eta_seconds(eta: object) -> float | None:
    """An ISO-8601 ETA as epoch seconds (naive times are UTC, as Celery sends them); None if unreadable.

    The library forwards the message's ``eta`` header as it is; a hostile or odd sender can put
    anything there, so anything but a readable time is simply no ETA.
    """
    if not eta or not isinstance(eta, str):
        return None
    try:
        parsed = datetime.fromisoformat(eta.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


class GraphRecord(Protocol):
    """What a workflow graph reads from a task (``core.workflow.build_workflow``).

    A :class:`TaskRecord` has all of it; a store can hand over lighter objects that carry
    just these attributes, so a 10,000-task graph never builds 10,000 full records.
    ``attempts`` only needs the right count, unless the graph should show attempt spans.
    """

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def state(self) -> TaskState: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def group_id(self) -> str | None: ...
    @property
    def group_index(self) -> int | None: ...
    @property
    def replaced_task_nesting(self) -> int: ...
    @property
    def worker(self) -> str | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def sent_at(self) -> float | None: ...
    @property
    def received_at(self) -> float | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def runtime_ms(self) -> float | None: ...
    @property
    def exception_type(self) -> str | None: ...
    @property
    def args(self) -> Any: ...  # read for ``celery.chord_unlock`` only
    @property
    def eta_at(self) -> float | None: ...  # when an ETA/countdown task is due (epoch seconds)
    @property
    def canvases(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def attempts(self) -> Sequence[Attempt]: ...


@dataclass(frozen=True, slots=True)
class AttemptSpan:
    """When and where one attempt of a task ran: one bar of a timeline."""

    number: int
    state: TaskState
    worker: str | None = None
    received_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class Collapsed:
    """Many sibling tasks drawn as one node: a huge fan-out, collapsed by the server.

    ``member_ids`` lists failed members first, then unfinished ones, then the rest, each
    in send order, at most a sample of them; ``counts`` covers every member.
    """

    count: int
    counts: Mapping[str, int]
    member_ids: tuple[str, ...]
    parent_id: str | None = None  # the task that sent them (spawned siblings)
    group_id: str | None = None  # the group they are members of


@dataclass(frozen=True, slots=True)
class Node:
    """A task in a workflow graph, real or ``PLANNED``/``SKIPPED``."""

    id: str
    name: str | None
    state: TaskState
    attempts: int = 0
    worker: str | None = None
    queue: str | None = None
    sent_at: float | None = None
    received_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    runtime_ms: float | None = None
    exception_type: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    plumbing: bool = False  # celery.chord_unlock and similar infrastructure
    # One span per attempt, oldest first, for a task that ran more than once (a retry
    # or a redelivery); ``None`` for a single attempt, whose span is the node's own, and
    # when no attempt has a time (attempts known only by count: nothing to draw).
    attempt_spans: tuple[AttemptSpan, ...] | None = None
    # A SKIPPED step: why it will never run, and the task that decided it (the upstream
    # task that failed / was revoked, or the one whose success made an error callback moot).
    skipped_reason: str | None = None
    skipped_by: str | None = None
    collapsed: Collapsed | None = None  # this node stands for many sibling tasks
    eta: float | None = None  # an ETA/countdown task: when it is due (epoch seconds)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: str  # spawn | chain | chord | link | errback | replace


@dataclass(frozen=True, slots=True)
class Container:
    """A group or chord: members in ``group_index`` order, plus a chord's callback."""

    id: str
    kind: str  # group | chord
    members: tuple[str, ...]  # every task drawn inside, branch by branch in group_index order
    callback: str | None = None
    # Per group_index, the tasks of that branch in run order: a chain's head and
    # tail, or a nested chord's header and callback. Nested containers' members
    # are a subset of their parent's, which is how a UI can nest the boxes.
    branches: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowGraph:
    id: str
    state: WorkflowState
    task_count: int
    counts: Mapping[str, int]
    started_at: float | None
    finished_at: float | None
    root_id: str | None = None
    name: str | None = None  # the display root's task name
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    groups: tuple[Container, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Set while every unfinished task waits for its ETA/countdown (``rollup.scheduled_for``):
    # the earliest of those ETAs. ``state`` stays RUNNING; the UI says "scheduled for".
    scheduled_for: float | None = None
    # The workflow named by its shape ("chord: score_item x500 → summarize"), from its summary.
    shape: str | None = None
