"""Handlers of the rarer task signals: failures, retries, revokes, rejections, unknown tasks.

Each runs under :func:`~stemtrace.capture.guard.guarded` and hands the emitter a data dict and
the raw values (exception text, traceback) the publisher thread captures off the hot path.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from stemtrace.capture import celery_compat as compat
from stemtrace.capture import state as _state
from stemtrace.capture.guard import guarded
from stemtrace.capture.tracing import add_worker_trace
from stemtrace.core import events as ev

_exc = compat.exception_identity


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, (int, float)):  # a countdown in seconds
        return _dt.datetime.fromtimestamp(time.time() + value, _dt.timezone.utc).isoformat()
    return str(value)


# -- worker main process -------------------------------------------------------
@guarded
def on_task_revoked(
    st: _state.State,
    sender: Any = None,
    *,
    request: Any = None,
    terminated: Any = False,
    signum: Any = None,
    expired: Any = False,
    **_: Any,
) -> None:
    name = getattr(request, "name", None) or getattr(sender, "name", None)
    data = {
        "terminated": bool(terminated),
        "signum": int(signum) if signum is not None else None,
        "expired": bool(expired),
    }
    st.emitter().emit_task(ev.TASK_REVOKED, request.id, name, (data,), proc=st.main_proc())


@guarded
def on_task_rejected(
    st: _state.State, sender: Any = None, message: Any = None, exc: Any = None, **_: Any
) -> None:
    headers = getattr(message, "headers", None) or {}
    props = getattr(message, "properties", None) or {}
    task_id = headers.get("id") or props.get("correlation_id") or f"unidentified-{time.time_ns()}"
    exc_type, text = _exc(exc)
    data = {"exception_type": exc_type, "requeue": False}
    st.emitter().emit_task(ev.TASK_REJECTED, task_id, headers.get("task"), (data, text), proc=st.main_proc())


@guarded
def on_task_unknown(
    st: _state.State,
    sender: Any = None,
    *,
    message: Any = None,
    exc: Any = None,
    name: Any = None,
    id: Any = None,
    **_: Any,
) -> None:
    exc_type, text = compat.not_registered(name)  # what the result backend records, not the KeyError
    data = {"exception_type": exc_type}
    st.emitter().emit_task(ev.TASK_UNKNOWN, id, name, (data, text), proc=st.main_proc())


# -- executing process -----------------------------------------------------------
def _runtime(st: _state.State, task_id: Any) -> float | None:
    """Seconds since ``task_prerun`` of ``task_id`` in this process (``task_postrun`` forgets it)."""
    start = st.starts.get(task_id)
    return None if start is None else (time.monotonic_ns() - start[0]) / 1e9


@guarded
def on_task_failure(
    st: _state.State,
    sender: Any = None,
    *,
    task_id: Any = None,
    exception: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    req = getattr(sender, "request", None)
    proc = st.exec_proc()
    # The worker main process reports deaths it saw (lost child, hard time limit);
    # Celery 5.7 sends that signal twice there, so the main process reports each id once.
    in_body = proc != "main"
    if not in_body:
        if task_id in st.main_failures:
            return
        st.main_failures.append(task_id)
    exc_type, text = _exc(exception)
    data: dict[str, Any] = {"exception_type": exc_type, "origin": "child" if in_body else "main"}
    if in_body:
        data["retries"] = getattr(req, "retries", 0) or 0
        data["runtime"] = _runtime(st, task_id)
        add_worker_trace(data, failure=True)
    values = (data, text, getattr(einfo, "traceback", None))
    st.emitter().emit_task(ev.TASK_FAILED, task_id, getattr(sender, "name", None), values, proc=proc)


@guarded
def on_task_retry(
    st: _state.State, sender: Any = None, request: Any = None, reason: Any = None, einfo: Any = None, **_: Any
) -> None:
    cause = getattr(reason, "exc", None) or reason
    exc_type, text = _exc(cause)
    data = {
        "retries": getattr(request, "retries", 0) or 0,
        "exception_type": exc_type,
        "eta": _iso(getattr(reason, "when", None)),
    }
    add_worker_trace(data, failure=False)
    name = getattr(sender, "name", None) or getattr(request, "task", None)
    values = (data, text, getattr(einfo, "traceback", None))
    st.emitter().emit_task(ev.TASK_RETRIED, request.id, name, values, proc=st.exec_proc())


@guarded
def on_task_internal_error(
    st: _state.State,
    sender: Any = None,
    *,
    task_id: Any = None,
    exception: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    exc_type, text = _exc(exception)
    values = ({"exception_type": exc_type}, text, getattr(einfo, "traceback", None))
    st.emitter().emit_task(
        ev.TASK_INTERNAL_ERROR, task_id, getattr(sender, "name", None), values, proc=st.exec_proc()
    )
