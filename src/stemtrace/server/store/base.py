"""The ``Store`` interface: what ingest writes and the API reads, independent of the database.

Rows cross this boundary as plain dataclasses and core models, never as pydantic
objects, so the API layer owns the JSON shape and the store owns the SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stemtrace.core.events import Event
from stemtrace.core.model import GraphRecord, TaskRecord, WorkflowGraph
from stemtrace.core.states import TaskState, WorkflowState


class StoreError(RuntimeError):
    """The store cannot be reached or used; the message says what to check."""


class BadCursor(ValueError):
    """A pagination cursor that this server did not produce."""


def encode_cursor(sort_ts: float, key: str) -> str:
    raw = json.dumps([sort_ts, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(f"malformed cursor {cursor[:40]!r}; pass back a next_cursor unchanged") from None
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not isinstance(key, str):
        raise BadCursor(f"malformed cursor {cursor[:40]!r}; pass back a next_cursor unchanged")
    return float(ts), key


@dataclass(frozen=True, slots=True)
class TaskQuery:
    name: str | None = None
    states: tuple[TaskState, ...] = ()
    worker: str | None = None
    queue: str | None = None
    routing_key: str | None = None
    q: str | None = None
    since: float | None = None
    until: float | None = None
    workflow: str | None = None
    limit: int = 50
    cursor: str | None = None
    exception_types: tuple[str, ...] = ()  # exact matches, any of
    group: str | None = None  # a group's (or chord header's) members
    parent: str | None = None  # a task's children
    beat: str | None = None  # runs of this celery beat schedule entry
    source: str | None = None  # the label of its event source (``--source NAME=…``)


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    states: tuple[WorkflowState, ...] = ()
    name: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: str | None = None
    source: str | None = None  # the label of its event source (``--source NAME=…``)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A task-list row: the filterable columns (TaskSummary)."""

    id: str
    name: str | None
    state: str
    workflow_id: str | None
    parent_id: str | None
    root_id: str | None
    group_id: str | None
    worker: str | None
    queue: str | None
    retries: int
    sent_at: float | None
    received_at: float | None
    started_at: float | None
    finished_at: float | None
    runtime_ms: float | None
    exception_type: str | None
    args_preview: str | None
    routing_key: str | None
    eta: float | None  # an ETA/countdown task: when it is due
    source: str  # the label of its event source; empty for the one unlabelled source
    sort_ts: float  # last: the list's order (``read`` pages by a row's last value)


@dataclass(frozen=True, slots=True)
class ChildRow:
    """A child task as the task detail lists it."""

    id: str
    name: str | None
    state: str


@dataclass(frozen=True, slots=True)
class TaskDetail:
    row: TaskRow
    record: TaskRecord
    extra: Mapping[str, Any]  # args_repr / kwargs_repr when the sender set them
    events: list[dict[str, Any]]
    children: list[str]
    # The first ``read.CHILD_TASKS_MAX`` children, in ``children`` order, with name and state.
    child_tasks: list[ChildRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    id: str
    name: str | None
    root_id: str | None
    state: str
    task_count: int
    counts: dict[str, int]
    started_at: float | None
    finished_at: float | None
    has_failure: bool
    sort_ts: float
    version: int = 0  # changes whenever any of the workflow's tasks does (keys graph caches)
    scheduled_for: float | None = None  # see ``core.rollup.scheduled_for``
    shape: str | None = None  # see ``core.shape``
    # When the server found it over with steps never sent (``store/never_sent.py``): the graph
    # is built with it (``core.workflow.build_workflow(settled_at=...)``) to agree with the row.
    settled_at: float | None = None
    source: str = ""  # the event source of its tasks (``--source NAME``); empty when unlabelled


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one committed batch (or a poll of the store) changed, for the live stream."""

    tasks: frozenset[str] = frozenset()
    workflows: frozenset[str] = frozenset()
    workers: frozenset[str] = frozenset()
    task_workflows: Mapping[str, str] = field(default_factory=dict)  # task id -> workflow id, when known

    def __bool__(self) -> bool:
        return bool(self.tasks or self.workflows or self.workers)


@dataclass(slots=True)
class ApplyResult:
    stored: int = 0  # events new to the store (a redelivery stores 0)
    changes: Changes = field(default_factory=Changes)


class PendingApply:
    """A batch whose statements ran and whose commit may still be running.

    ``result()`` waits for the commit and raises what it raised; only then may the
    batch's messages be acknowledged. This one is already committed.
    """

    def __init__(self, result: ApplyResult) -> None:
        self._result = result

    def result(self) -> ApplyResult:
        return self._result


class Store(ABC):
    """Persistent state. Every method is safe to call from several threads."""

    url: str

    @abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version."""

    @abstractmethod
    def apply(
        self, events: Sequence[Event], malformed: Mapping[str, int], now: float, source: str = ""
    ) -> ApplyResult:
        """Apply a batch in one transaction. Applying the same events again changes nothing.
        ``source`` is the label of the event source the batch came from (empty: unlabelled)."""

    def prepare(self, events: Sequence[Event]) -> object:
        """The part of a batch's work that reads nothing stored, done ahead of ``apply_begin``.

        Ingest calls it while the previous batch still commits, and passes the result to
        ``apply_begin`` as ``prepared``. This default prepares nothing.
        """
        return None

    def apply_begin(
        self,
        events: Sequence[Event],
        malformed: Mapping[str, int],
        now: float,
        prepared: object = None,
        source: str = "",
    ) -> PendingApply:
        """:meth:`apply`, with the writes allowed to finish in the background.

        Ingest decodes its next batch while this one commits; the next ``apply_begin``
        must wait for ``result()`` of this one. ``prepared`` is what ``prepare(events)``
        returned, if it was called. This default commits before returning.
        """
        return PendingApply(self.apply(events, malformed, now, source))

    @abstractmethod
    def list_tasks(self, query: TaskQuery) -> Page: ...

    @abstractmethod
    def get_task(self, task_id: str) -> TaskDetail | None: ...

    @abstractmethod
    def resolve_workflow(self, any_id: str) -> str | None:
        """The workflow id for a workflow id, a member task id or a merged-away id."""

    @abstractmethod
    def workflow_records(self, workflow_id: str) -> list[TaskRecord]: ...

    @abstractmethod
    def workflow_skeletons(self, workflow_id: str) -> list[GraphRecord]:
        """The workflow's tasks with only what ``build_workflow`` reads.

        Arguments, results, exceptions and attempt details are left out (``attempts``
        holds placeholders of the right count, or the spans of a task that ran more than
        once), which makes a 10,000-task graph cheap.
        """

    def collapsed_graph(self, row: WorkflowRow) -> WorkflowGraph | None:
        """The graph of a huge workflow with its big sibling sets collapsed into one node each
        (``fanout``), built without holding every task; ``None``: build the full graph."""
        return None

    @abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRow | None: ...

    @abstractmethod
    def list_workflows(self, query: WorkflowQuery) -> Page: ...

    @abstractmethod
    def list_workers(self, source: str | None = None) -> list[dict[str, Any]]:
        """Every stored worker's record; ``source``: those whose events came through it."""

    @abstractmethod
    def task_names(self, source: str | None = None) -> list[tuple[str, int]]:
        """Task names with their stored counts; ``source``: of that event source only."""

    @abstractmethod
    def failures(
        self,
        since: float | None,
        until: float | None,
        name: str | None,
        limit: int,
        *,
        source: str | None = None,
    ) -> list[dict[str, Any]]: ...

    @abstractmethod
    def task_stats(
        self, since: float, until: float, name: str | None, buckets: int, *, source: str | None = None
    ) -> list[dict[str, Any]]: ...

    def task_metrics(self, now: float) -> Any:
        """The task counters and histograms ``/metrics`` exports (``rollups_read.TaskMetrics``)."""
        raise NotImplementedError

    @abstractmethod
    def stale_tasks(
        self, states: Sequence[TaskState], older_than: float, limit: int, source: str | None = None
    ) -> list[TaskRow]: ...

    @abstractmethod
    def changes_since(self, after: float) -> tuple[Changes, float]:
        """Ids written after server time ``after``, and the time to poll from next."""

    @abstractmethod
    def counters(self, *, library: bool = True) -> dict[str, Any]:
        """Malformed-event counts by kind and, unless ``library`` is False, the library's health
        counters by process (``library_reports``)."""

    def library_reports(self) -> list[dict[str, Any]]:
        """The latest health report of each library process, newest first, at most 1,000."""
        return list(self.counters().get("library", []))

    @abstractmethod
    def mark_lost(self, now: float, offline_after: float) -> int:
        """Turn STARTED tasks of workers that went offline into LOST; returns how many."""

    @abstractmethod
    def expire(self, now: float, retention: float, failure_retention: float, batch: int = 500) -> int:
        """Delete up to ``batch`` expired workflows with everything in them; returns how many."""

    def expire_side_tables(self, now: float, retention: float) -> int:
        """Delete workers not seen and library health older than ``retention``; returns rows."""
        return 0

    def evict(self, max_tasks: int, batch: int = 500) -> int:
        """Delete up to ``batch`` oldest workflows (successes first) while the store holds more
        than ``max_tasks`` tasks; returns the workflows deleted."""
        return 0

    def settle_never_sent(
        self, now: float, quiet_for: float, after: tuple[float, str] = (0.0, "")
    ) -> tuple[int, tuple[float, str], bool]:
        """Workflows over (every task final, nothing new for ``quiet_for``) with steps still
        planned: those steps were never sent (``store/never_sent.py``). One batch after the
        cursor ``after``: how many workflows changed, the next cursor, whether more may remain."""
        return 0, after, False

    def reclaim(self) -> int:
        """Return freed space to the file system where the engine needs telling; returns pages."""
        return 0

    def store_id(self) -> str:
        """This store's persistent identity (the same for every replica of it)."""
        raise NotImplementedError

    def record_quarantine(self, entries: Sequence[Any], now: float) -> None:
        """Count quarantined events (``server.quarantine.Quarantined``) in one transaction:
        one row per ``(reason, kind)``, keeping the latest detail and sample."""
        raise NotImplementedError

    def quarantine(self) -> list[dict[str, Any]]:
        """The quarantine rows, most recently seen first."""
        raise NotImplementedError

    # Loss detection (``server/losses.py``). The defaults keep a store without it working.
    def record_seen(self, rows: Sequence[Any]) -> None:  # noqa: B027 - optional, not abstract
        """Record runs of seqs seen: ``(inst, lo, hi, lo_at, hi_at, lo_ts, hi_ts, host, pid)``."""

    def settle_losses(self, now: float, grace: float, forget_before: float | None = None) -> int:
        """Turn gaps open for ``grace`` seconds into loss records; returns the events newly lost."""
        return 0

    def loss_report(self, recent_since: float) -> dict[str, Any]:
        """Events lost by cause, how many detected since ``recent_since``, the latest records."""
        return {"total": 0, "by_cause": {}, "recent": 0, "latest": []}

    def losses_overlapping(self, start: float, end: float, workflow_id: str | None = None) -> int:
        """Events lost in windows overlapping ``start..end``, from the workflow's sources if given."""
        return 0

    # -- celery beat (``store/beat.py``) --------------------------------------------------------

    def beat_entries(self, source: str | None = None) -> list[tuple[str, str]]:
        """The (entry, source) pairs with runs stored; ``source``: of that source only. An entry
        is a name within one event source ("" for the one unlabelled source)."""
        raise NotImplementedError

    def beat_runs(
        self, entry: str, limit: int, cursor: str | None = None, source: str = ""
    ) -> tuple[list[Any], str | None]:
        """An entry's runs (``store.beat.BeatRun``), newest first, and the next page's cursor."""
        raise NotImplementedError

    def beat_overview(self, since: float, sample: int, recent: int, source: str | None = None) -> list[Any]:
        """Per entry (``store.beat.EntryReads``): its latest ``sample`` send times, its latest
        ``recent`` runs and its count of runs since ``since``, read in one go."""
        raise NotImplementedError

    def beat_sent_times(self, entry: str, limit: int, source: str = "") -> list[float]:
        """When the latest ``limit`` runs of ``entry`` were sent, oldest first."""
        raise NotImplementedError

    def beat_count(self, entry: str, since: float, source: str = "") -> int:
        """How many runs of ``entry`` were sent since ``since``."""
        raise NotImplementedError

    def claim_alerts(self, rule: str, keys: Sequence[str], now: float) -> list[str]:
        """The alert keys this replica may send now (each key is claimed once, store-wide)."""
        raise NotImplementedError

    def release_alerts(self, keys: Sequence[str]) -> None:  # noqa: B027 - optional, not abstract
        """Forget claimed keys whose message could not be sent, so they are tried again."""

    def expire_alerts(self, before: float) -> int:
        """Drop alert keys claimed before ``before`` (a recurring incident may alert again)."""
        return 0

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` when the database is unreachable."""

    @abstractmethod
    def close(self) -> None: ...
