"""Split one task id's events into attempts and decide each attempt's state.

Celery reuses a task id for every retry (``retries`` goes up), for a redelivery
after a lost worker (same ``retries``, ``redelivered=True``) and for
``task.replace()`` (``replaced_task_nesting`` goes up, maybe another name). So an
attempt is keyed by ``(generation, retries, delivery)``. Events arrive in any
order and more than once; every decision here depends only on the *set* of
events, never on arrival order, and a state is chosen by event-type precedence,
never by comparing clocks of different hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stemtrace.core import events as ev
from stemtrace.core.events import Event
from stemtrace.core.model import Attempt
from stemtrace.core.slots import slot_builder
from stemtrace.core.states import TaskState
from stemtrace.core.tracing import NO_TRACE, TraceIds, attempt_trace

# Within one attempt the strongest outcome wins, whatever order its events came in:
# a revoke beats the killed child's postrun(None), a lost worker beats a missing
# success, any outcome beats "started".
PRECEDENCE: dict[TaskState, int] = {
    TaskState.PENDING: 0,
    TaskState.RECEIVED: 1,
    TaskState.STARTED: 2,
    TaskState.SUCCESS: 3,
    TaskState.IGNORED: 4,
    TaskState.RETRY: 5,
    TaskState.REJECTED: 6,
    TaskState.FAILURE: 7,
    TaskState.LOST: 8,
    TaskState.REVOKED: 9,
}
_POSTRUN_STATES = {s.value: s for s in (TaskState.SUCCESS, TaskState.FAILURE, TaskState.RETRY)} | {
    "IGNORED": TaskState.IGNORED,
    "REJECTED": TaskState.REJECTED,
}
# Events from the executing process; one run of a task body produces them.
EXEC_TYPES = frozenset(
    {
        ev.TASK_STARTED,
        ev.TASK_SUCCEEDED,
        ev.TASK_FAILED,
        ev.TASK_RETRIED,
        ev.TASK_POSTRUN,
        ev.TASK_INTERNAL_ERROR,
    }
)
REDELIVERED_LOST = "redelivered: worker lost"
_new_attempt = slot_builder(Attempt)  # Attempt(**fields), faster


def exception_class(name: str | None) -> str:
    """``billiard.exceptions.WorkerLostError`` -> ``WorkerLostError``."""
    return (name or "").rsplit(".", 1)[-1]


def is_worker_lost(exception_type: str | None) -> bool:
    """Failures that mean the process died under the task, not that the task failed."""
    return exception_class(exception_type) in {"WorkerLostError", "TimeLimitExceeded"}


@dataclass(slots=True)
class Draft:
    """A mutable attempt while it is being folded; frozen into :class:`Attempt`."""

    order: tuple[int, int, float, int]  # (generation, retries, delivery ts, tie-break)
    received: Event | None = None
    run: list[Event] = field(default_factory=list)
    late: list[Event] = field(default_factory=list)  # attempt-less events (main failure, revoke)
    state: TaskState = TaskState.PENDING
    forced_lost: str | None = None
    forced_state: TaskState | None = None
    # The worker main process's ``task.ready``: the outcome the prefork child returned, used
    # only when the attempt's own events end unfinished (the child died before sending them).
    ready: Event | None = None

    def started(self) -> Event | None:
        return next((e for e in self.run if e.type == ev.TASK_STARTED), None)

    def outcome(self) -> tuple[TaskState, Event | None, str | None]:
        """The attempt's state, the event that decided it, and a lost reason."""
        best, decider, reason = TaskState.PENDING, None, None
        if self.received is not None:
            best, decider = TaskState.RECEIVED, None
        current = PRECEDENCE[best]
        simple = _SIMPLE_STATES
        for events in (self.run, self.late):
            for event in events:
                state, why = simple.get(event.type) or _event_state(event)
                if state is None:
                    continue
                rank = PRECEDENCE[state]
                # Ties go to the earliest event so finished_at does not depend on arrival.
                if rank > current or (rank == current and decider is not None and _before(event, decider)):
                    best, decider, reason, current = state, event, why, rank
        unfinished = best in (TaskState.PENDING, TaskState.RECEIVED, TaskState.STARTED)
        if unfinished and self.ready is not None:
            told = _POSTRUN_STATES.get(str(self.ready.data.get("state")))
            if told is not None:  # what Celery got from the child beats any inference
                return told, self.ready, None
        if self.forced_lost is not None and best is TaskState.STARTED:
            return TaskState.LOST, None, self.forced_lost
        if self.forced_state is not None and unfinished:
            return self.forced_state, None, None
        return best, decider, reason

    def freeze(self, number: int) -> Attempt:
        state, decider, reason = self.outcome()
        run, late, received = self.run, self.late, self.received
        # One pass for the run's first start and first retry (``started()``).
        start = retry = None
        for event in run:
            etype = event.type
            if etype == ev.TASK_STARTED:
                if start is None:
                    start = event
            elif etype == ev.TASK_RETRIED and retry is None:
                retry = event
        # The first node of (start, received, *run, *late).
        worker = None
        if start is not None and start.src.node:
            worker = start.src.node
        elif received is not None and received.src.node:
            worker = received.src.node
        else:
            for events in (run, late):
                for event in events:
                    if event.src.node:
                        worker = event.src.node
                        break
                if worker is not None:
                    break
        exc_event = None
        ready = self.ready if decider is not None and decider is self.ready else None
        from_main = ready is not None
        if state not in _NO_EXCEPTION:
            exc_event = _exception_event([ready] if ready is not None else [*run, *late], state)
        runtime = _runtime(decider) if decider is not None else None
        if runtime is None:
            runtime = next((r for r in map(_runtime, run) if r is not None), None)
        exc_type = None
        exception = traceback = _WHOLE_NONE
        if exc_event is not None:
            exc_type = _str(exc_event, "exception_type")
            exception = text_of(exc_event.data.get("exception"))
            traceback = text_of(exc_event.data.get("traceback"))
        if exc_type is None and late and any(e.type == ev.TASK_UNKNOWN for e in late):
            exc_type = "celery.exceptions.NotRegistered"  # what Celery stores as the result
        trace = _trace(start, run)
        final = state not in _UNFINISHED
        finished_at = None
        if final:
            finished_at = decider.ts if decider is not None else _last_ts(self)
        return _new_attempt(
            number=number,
            state=state,
            worker=worker,
            received_at=received.ts if received is not None else None,
            started_at=start.ts if start is not None else _accepted_at(ready),
            finished_at=finished_at,
            runtime_ms=runtime * 1000.0 if runtime is not None else None,
            exception_type=exc_type,
            exception=exception[0],
            traceback=traceback[0],
            lost_reason=reason if state is TaskState.LOST else None,
            retry_eta=_str(retry, "eta"),
            redelivered=bool(received is not None and received.data.get("redelivered")),
            exception_original_size=exception[1],
            traceback_original_size=traceback[1],
            handler_ms=_handler_ms(decider),
            outcome_from="main" if from_main else None,
            trace_id=trace.trace_id,
            span_id=trace.span_id,
            sentry_trace_id=trace.sentry_trace_id,
            sentry_event_id=trace.sentry_event_id,
        )


def _accepted_at(ready: Event | None) -> float | None:
    """When the child accepted the task, as the main process noted it (Celery's ``time_start``,
    the start its own ``task-started`` event reports under prefork), from a ``task.ready``."""
    value = ready.data.get("accepted_at") if ready is not None else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


_UNFINISHED = frozenset({TaskState.PENDING, TaskState.RECEIVED, TaskState.STARTED})
# States whose attempt shows no exception (see _exception_event).
_NO_EXCEPTION = frozenset({TaskState.SUCCESS, TaskState.PENDING, TaskState.RECEIVED, TaskState.STARTED})


_TRACED_OUTCOMES = frozenset({ev.TASK_FAILED, ev.TASK_RETRIED})


def _trace(start: Event | None, run: Sequence[Event]) -> TraceIds:
    """The attempt's trace and Sentry identifiers (``core.tracing``): the start's headers, and
    what the run's failure or retry knew in the worker. Most attempts have neither: a pass over
    the run's one or two events and two dict lookups, no parsing."""
    outcomes = [e.data for e in run if e.type in _TRACED_OUTCOMES]
    started = start.data if start is not None else None
    if outcomes or (started is not None and (started.get("traceparent") or started.get("sentry_trace"))):
        return attempt_trace(started, outcomes)
    return NO_TRACE


def _before(a: Event, b: Event) -> bool:
    return (a.ts, (a.src.inst, a.src.seq)) < (b.ts, (b.src.inst, b.src.seq))


def _last_ts(draft: Draft) -> float | None:
    stamps = [e.ts for e in (*draft.run, *draft.late)]
    if draft.received is not None:
        stamps.append(draft.received.ts)
    return max(stamps) if stamps else None


def _str(event: Event | None, key: str) -> str | None:
    if event is None:
        return None
    value = event.data.get(key)
    return value if isinstance(value, str) else None


_WHOLE_NONE: tuple[str | None, int | None] = (None, None)


def text_of(value: object) -> tuple[str | None, int | None]:
    """A captured free-text field (an exception message, a traceback) as its text and, when
    the library cut it, its original size in bytes: ``(preview, size)`` of a truncation marker
    (``events.TRUNCATED_KEY``), ``(text, None)`` of whole text, ``(None, None)`` otherwise."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and value.get(ev.TRUNCATED_KEY) is True:
        preview, size = value.get("preview"), value.get("size")
        if isinstance(preview, str):
            return preview, size if type(size) is int else None
    return _WHOLE_NONE


def _handler_ms(event: Event | None) -> float | None:
    """Time in the task's success handlers after its body (``task.succeeded``'s ``handler_runtime``)."""
    value = event.data.get("handler_runtime") if event is not None else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) * 1000.0


def _runtime(event: Event | None) -> float | None:
    value = event.data.get("runtime") if event is not None else None
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _exception_event(events: Sequence[Event], state: TaskState) -> Event | None:
    # The failure's own event carries the traceback; postrun never does.
    if state in (TaskState.SUCCESS, TaskState.PENDING, TaskState.RECEIVED, TaskState.STARTED):
        return None
    # The body's own failure first: the main process's report of the same attempt (a result it
    # could not unpickle, ``MaybeEncodingError``) says less about what the task raised.
    ranked = sorted(
        (e for e in events if e.data.get("exception_type") or e.data.get("exception")),
        key=lambda e: (
            e.type != ev.TASK_FAILED,
            e.data.get("origin") == "main",
            e.ts,
            (e.src.inst, e.src.seq),
        ),
    )
    return ranked[0] if ranked else None


# _event_state for the types whose state does not depend on the event's data.
_SIMPLE_STATES: dict[str, tuple[TaskState, None]] = {
    ev.TASK_STARTED: (TaskState.STARTED, None),
    ev.TASK_SUCCEEDED: (TaskState.SUCCESS, None),
    ev.TASK_RETRIED: (TaskState.RETRY, None),
    ev.TASK_REVOKED: (TaskState.REVOKED, None),
    ev.TASK_REJECTED: (TaskState.REJECTED, None),
    ev.TASK_UNKNOWN: (TaskState.FAILURE, None),
    ev.TASK_INTERNAL_ERROR: (TaskState.FAILURE, None),
    ev.TASK_RECEIVED: (TaskState.RECEIVED, None),
}


def _event_state(event: Event) -> tuple[TaskState | None, str | None]:
    """The state one event says its attempt reached, and why it was lost."""
    etype = event.type
    if etype == ev.TASK_STARTED:
        return TaskState.STARTED, None
    if etype == ev.TASK_SUCCEEDED:
        return TaskState.SUCCESS, None
    if etype == ev.TASK_RETRIED:
        return TaskState.RETRY, None
    if etype == ev.TASK_FAILED:
        data = event.data
        exc_type = data.get("exception_type")
        if data.get("origin") == "main" and is_worker_lost(exc_type):
            if exception_class(exc_type) == "TimeLimitExceeded":
                return TaskState.LOST, "hard time limit exceeded"
            message = text_of(data.get("exception"))[0]
            return TaskState.LOST, f"worker lost: {message}" if message else "worker lost"
        return TaskState.FAILURE, None
    if etype == ev.TASK_POSTRUN:
        raw = event.data.get("state")
        if raw is None:
            return TaskState.LOST, "process killed (hard time limit or terminate)"
        return _POSTRUN_STATES.get(str(raw)), None
    if etype == ev.TASK_REVOKED:
        return TaskState.REVOKED, None
    if etype == ev.TASK_REJECTED:
        return TaskState.REJECTED, None
    if etype in (ev.TASK_UNKNOWN, ev.TASK_INTERNAL_ERROR):
        return TaskState.FAILURE, None
    if etype == ev.TASK_RECEIVED:
        return TaskState.RECEIVED, None
    return None, None


_OUTCOME_TYPES = frozenset({ev.TASK_SUCCEEDED, ev.TASK_FAILED})


def single_attempt(ordered: list[Event], stated: list[int | None]) -> Attempt | None:
    """The attempt of the shape most tasks have, or None for the general path.

    ``ordered`` are a task's events in ``(ts, key)`` order, ``stated`` the ``retries`` each
    says, all of one generation. The shape: first try only (every ``retries`` said is 0), at
    most one delivery, one ``task.started`` and at most one outcome (succeeded or failed)
    from the same process, nothing else but the published messages. The general path
    (``deliveries.attempt_drafts`` and :meth:`Draft.freeze`) makes exactly one attempt of it;
    this builds the same attempt without grouping, splitting runs and pairing deliveries
    (a fifth of folding a task). ``tests/unit/core/test_task_single_attempt.py`` holds the
    two paths equal over generated event sets.
    """
    received = started = outcome = None
    for event, said in zip(ordered, stated, strict=True):
        if said:
            return None  # a retry's event: another attempt
        etype = event.type
        if etype == ev.TASK_PUBLISHED:
            continue
        if etype == ev.TASK_STARTED:
            if started is not None:
                return None
            started = event
        elif etype == ev.TASK_RECEIVED:
            if received is not None:
                return None
            received = event
        elif etype in _OUTCOME_TYPES and said is not None and outcome is None:
            outcome = event  # without ``retries`` it would belong to the latest attempt
        else:
            return None
    if started is None or not started.src.node:
        return None
    state, reason = TaskState.STARTED, None
    decider, run = started, [started]
    if outcome is not None:
        if outcome.src.inst != started.src.inst:
            return None  # another process: a run of its own
        found, reason = _event_state(outcome)
        if found is None:
            return None
        state, decider, run = found, outcome, [started, outcome]
    exc_event = _exception_event(run, state) if state not in _NO_EXCEPTION else None
    exception = text_of(exc_event.data.get("exception")) if exc_event is not None else _WHOLE_NONE
    traceback = text_of(exc_event.data.get("traceback")) if exc_event is not None else _WHOLE_NONE
    runtime = _runtime(decider)
    if runtime is None:  # the first runtime the run states otherwise: the start's, if any
        runtime = _runtime(started)
    trace = _trace(started, run)
    return _new_attempt(
        number=1,
        state=state,
        worker=started.src.node,
        received_at=received.ts if received is not None else None,
        started_at=started.ts,
        finished_at=decider.ts if state not in _UNFINISHED else None,
        runtime_ms=runtime * 1000.0 if runtime is not None else None,
        exception_type=_str(exc_event, "exception_type"),
        exception=exception[0],
        traceback=traceback[0],
        lost_reason=reason if state is TaskState.LOST else None,
        retry_eta=None,
        redelivered=bool(received is not None and received.data.get("redelivered")),
        exception_original_size=exception[1],
        traceback_original_size=traceback[1],
        handler_ms=_handler_ms(decider),
        outcome_from=None,
        trace_id=trace.trace_id,
        span_id=trace.span_id,
        sentry_trace_id=trace.sentry_trace_id,
        sentry_event_id=trace.sentry_event_id,
    )
