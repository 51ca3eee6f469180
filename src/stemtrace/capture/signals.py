"""The per-task signal handlers: each copies a few fields into a tuple and hands it to the emitter.

No handler raises into Celery: a bug here is counted and logged once (``guard``); these run for
every task, so they guard themselves inline, which costs less than a wrapper. The rarer
outcomes (failures, retries, revokes, rejections, unknown tasks) are handled in ``outcomes``.
Heavy work (building the event, serializing args, results and the embedded canvas) is deferred
to the publisher thread; ``fields`` declares the values each handler passes and where they come
from in Celery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stemtrace.capture import beat
from stemtrace.capture import celery_compat as compat
from stemtrace.capture import state as _state
from stemtrace.capture.canvas import PROTOCOL_1
from stemtrace.capture.fields import EMPTY_EMBED
from stemtrace.capture.guard import failed as _failed
from stemtrace.capture.outcomes import (
    on_task_failure,
    on_task_internal_error,
    on_task_rejected,
    on_task_retry,
    on_task_revoked,
    on_task_unknown,
)
from stemtrace.core import events as ev

# The per-task handlers build their buffered entry whole (see ``message.Entry``) and hand it
# to ``Emitter.put``: a keyword call and a second tuple per event cost a third of a handler.
_PUBLISHED, _RECEIVED, _STARTED, _SUCCEEDED = (
    ev.TASK_PUBLISHED,
    ev.TASK_RECEIVED,
    ev.TASK_STARTED,
    ev.TASK_SUCCEEDED,
)
_time_ns = time.time_ns


_current_task_id = compat.current_task_id
_request_of = compat.request_of
_beat_mark = beat.published_mark
_BEAT_ENTRY, _BEAT_MARK = compat.BEAT_ENTRY_HEADER, compat.BEAT_MARK_HEADER


def _name(value: Any) -> Any:
    return getattr(value, "name", value)


# -- publish side: any process that sends ------------------------------------
def on_after_task_publish(
    sender: Any = None,
    *,
    body: Any = None,
    exchange: Any = None,
    routing_key: Any = None,
    headers: Any = None,
    **_: Any,
) -> None:
    """The message as sent, stamped when the broker took it: as Celery's own ``task-sent``.

    No ``before_task_publish`` receiver: its dispatch alone costs a fifth of what the library
    adds to a ``.delay()``. A fast worker may log its receipt a few microseconds before this
    stamp; the server orders a task's messages by what they say, never by clocks.
    """
    st = _state._state
    if st is None:
        return
    try:
        h = headers if isinstance(headers, dict) else {}
        if "id" in h:
            whole = isinstance(body, (list, tuple)) and len(body) == 3
            args, kwargs, embed = body if whole else ((), {}, None)
            task_id, name = h["id"], h.get("task", sender)
        else:  # protocol 1: everything is in the body
            b = body if isinstance(body, dict) else {}
            h, args, kwargs = b, b.get("args", ()), b.get("kwargs", {})
            embed = {k: b.get(k) for k in ("chord", "callbacks", "errbacks")}
            embed[PROTOCOL_1] = True  # a chain's steps are its links (capture.canvas)
            task_id, name = b.get("id"), b.get("task", sender)
        em = st._emitter or st.emitter()
        em.put(  # an Entry: fields.DATA_FIELDS[TASK_PUBLISHED], then RAW_FIELDS (empty kwargs as None)
            (
                _PUBLISHED,
                _time_ns(),
                next(em.sequence),
                task_id,
                name,
                h.get("root_id"),
                h.get("parent_id"),
                h.get("group"),
                h.get("group_index"),
                h.get("retries", 0),
                h.get("eta"),
                h.get("expires"),
                compat.published_queue(st.app, exchange, routing_key),
                _name(exchange),
                routing_key,
                h.get("replaced_task_nesting", 0),
                # No task between prerun and postrun here (a client, beat, an idle worker): none
                # publishes, and Celery's task stack is not worth asking (it raises to say empty).
                _current_task_id() if st.starts else None,
                h.get("shadow"),
                h.get("ignore_result", False),
                _beat_mark(h) if st.beat else None,
                args,
                kwargs or None,
                None if embed == EMPTY_EMBED else embed,
                h.get("argsrepr"),
                h.get("kwargsrepr"),
                em.proc,
                em.node,
            )
        )
    except Exception as exc:
        _failed(st, "on_after_task_publish", exc)


# -- worker main process -------------------------------------------------------
def on_task_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    st = _state._state
    if st is None:
        return
    try:
        rd = getattr(request, "request_dict", None) or {}
        delivery = getattr(request, "delivery_info", None) or {}
        payload = getattr(request, "_payload", None)
        embed = payload[2] if isinstance(payload, (list, tuple)) and len(payload) == 3 else None
        if embed is not None and compat.sent_with_protocol_1(request):
            embed = {**embed, PROTOCOL_1: True}
        em = st._emitter or st.emitter()
        em.put(  # an Entry: fields.DATA_FIELDS[TASK_RECEIVED], then RAW_FIELDS
            (
                _RECEIVED,
                _time_ns(),
                next(em.sequence),
                request.id,
                getattr(request, "name", None),
                rd.get("root_id"),
                rd.get("parent_id"),
                rd.get("group"),
                rd.get("group_index"),
                rd.get("retries", 0),
                rd.get("eta"),
                rd.get("expires"),
                rd.get("replaced_task_nesting", 0),
                bool(delivery.get("redelivered", False)),
                delivery.get("exchange"),
                delivery.get("routing_key"),
                compat.received_queue(sender, delivery),
                rd.get(_BEAT_ENTRY) or rd.get(_BEAT_MARK),
                None if embed == EMPTY_EMBED else embed,
                st.main_proc(),
                em.node,
            )
        )
        children = st.children
        if children is not None and type(request) not in children.hooked:
            children.hook(type(request))  # once per task type: what its child returns (``children``)
    except Exception as exc:
        _failed(st, "on_task_received", exc)


# -- executing process -----------------------------------------------------------
def on_task_prerun(sender: Any = None, task_id: Any = None, task: Any = None, **_: Any) -> None:
    st = _state._state
    if st is None:
        return
    try:
        req = _request_of(task)
        retries = getattr(req, "retries", 0) or 0
        st.starts[task_id] = (time.monotonic_ns(), retries)
        em = st._emitter or st.emitter()
        em.put(  # an Entry: fields.DATA_FIELDS[TASK_STARTED]
            (
                _STARTED,
                _time_ns(),
                next(em.sequence),
                task_id,
                getattr(task, "name", None),
                retries,
                em.pid,
                getattr(req, "root_id", None),
                getattr(req, "parent_id", None),
                getattr(req, "group", None),
                getattr(req, "group_index", None),
                getattr(req, "traceparent", None),
                getattr(req, "sentry-trace", None),
                st.exec_proc(),
                em.node,
            )
        )
    except Exception as exc:
        _failed(st, "on_task_prerun", exc)


# task id -> (Celery's runtime of the body in seconds, or None; monotonic ns at task_success),
# from ``task_success`` to the ``task_postrun`` that follows it in the same thread.
_successes: dict[str, tuple[float | None, int]] = {}


def on_task_success(sender: Any = None, result: Any = None, runtime: Any = None, **_: Any) -> None:
    """Note Celery's own runtime of the body for ``task_postrun``, which reports the success.

    Celery measures a task from just before ``task_prerun`` to just after its result is stored,
    before the task's ``on_success`` handler (``celery.app.trace``: the ``runtime`` of its
    "succeeded in" log line and ``task-succeeded`` event). From Celery 5.7 ``task_success``
    carries that value; before, the time from ``task_prerun`` to this signal stands in (it
    then includes ``on_success``). ``task_postrun`` comes after ``after_return`` too, so the
    difference is the time spent in those handlers.
    """
    st = _state._state
    if st is None:
        return
    try:
        task_id = getattr(_request_of(sender), "id", None)
        if task_id is None:
            return
        measured = (
            float(runtime) if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
        )
        if len(_successes) > 10_000:  # postrun never came (a killed body): forget the oldest
            _successes.pop(next(iter(_successes)))
        _successes[task_id] = (measured, time.monotonic_ns())
    except Exception as exc:
        _failed(st, "on_task_success", exc)


def _body_and_handlers(started_ns: int, task_id: Any) -> tuple[float, float | None]:
    """The body's runtime as Celery measures it and the time in success handlers after it, in
    seconds, for a task that started at ``started_ns`` and reaches ``task_postrun`` now."""
    now = time.monotonic_ns()
    total = (now - started_ns) / 1e9
    success = _successes.pop(task_id, None)
    if success is None:
        return total, None
    celery_runtime, at = success
    if celery_runtime is None:  # Celery < 5.7: up to task_success, then after_return
        return (at - started_ns) / 1e9, (now - at) / 1e9
    return celery_runtime, max(0.0, total - celery_runtime)


# Outcomes with a signal of their own: postrun adds nothing for them.
_REPORTED_ELSEWHERE = frozenset({"FAILURE", "RETRY"})


def on_task_postrun(
    sender: Any = None,
    *,
    task_id: Any = None,
    task: Any = None,
    retval: Any = None,
    state: Any = None,
    **_: Any,
) -> None:
    """Success, and the outcomes no other signal reports: IGNORED, REJECTED, and ``None``
    (the child is being killed: hard time limit, revoke with terminate).

    Success is reported here, after ``task_success`` (:func:`on_task_success`), so the event
    holds both Celery's runtime of the body (``runtime``) and the time the task's ``on_success``
    and ``after_return`` handlers took after it (``handler_runtime``).
    """
    st = _state._state
    if st is None:
        return
    try:
        started = st.starts.pop(task_id, None)
        if state in _REPORTED_ELSEWHERE:
            _successes.pop(task_id, None)
            return  # task_failure / task_retry already said it: one event fewer per task
        handlers: float | None = None
        if started is None:  # no prerun seen here: read what the request says
            runtime, retries = None, getattr(_request_of(task), "retries", 0) or 0
            _successes.pop(task_id, None)
        elif state == "SUCCESS":
            (runtime, handlers), retries = _body_and_handlers(started[0], task_id), started[1]
        else:
            runtime, retries = (time.monotonic_ns() - started[0]) / 1e9, started[1]
        name = getattr(task, "name", None)
        em = st._emitter or st.emitter()
        if state == "SUCCESS":
            # An Entry: fields.DATA_FIELDS[TASK_SUCCEEDED], then RAW_FIELDS.
            em.put(
                (
                    _SUCCEEDED,
                    _time_ns(),
                    next(em.sequence),
                    task_id,
                    name,
                    retries,
                    runtime,
                    handlers,
                    retval,
                    st.exec_proc(),
                    em.node,
                )
            )
            return
        outcome = {"retries": retries, "state": state, "runtime": runtime}
        em.emit_task(ev.TASK_POSTRUN, task_id, name, (outcome,), proc=st.exec_proc())
    except Exception as exc:
        _failed(st, "on_task_postrun", exc)


TASK_HANDLERS: dict[str, Callable[..., None]] = {
    "after_task_publish": on_after_task_publish,
    "task_received": on_task_received,
    "task_revoked": on_task_revoked,
    "task_rejected": on_task_rejected,
    "task_unknown": on_task_unknown,
    "task_prerun": on_task_prerun,
    "task_failure": on_task_failure,
    "task_retry": on_task_retry,
    "task_success": on_task_success,
    "task_postrun": on_task_postrun,
    "task_internal_error": on_task_internal_error,
}
