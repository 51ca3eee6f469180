"""What the executing process's tracing knows when an attempt fails or retries.

The library depends on neither OpenTelemetry nor Sentry and never imports them: it asks only a
module the process already loaded (``sys.modules``), so a process without them pays one dict
lookup per failure, and nothing on the per-task path. Celery sends ``task_failure`` and
``task_retry`` from inside the task's trace, where both tools still hold the attempt's context:

- OpenTelemetry's Celery instrumentation makes its worker span current from ``task_prerun``
  to ``task_postrun``: its trace and span ids are the attempt's (with ``use_span_links`` the
  span starts a trace of its own, which the headers on ``task.started`` cannot know).
- Sentry's Celery integration runs each task in its own isolation scope and captures the
  exception as it leaves the task body, before Celery sends ``task_failure``; the scope's
  ``last_event_id()`` is then that event's id, and ``get_traceparent()`` the trace the event
  carries. Sentry 2 or later (``get_client``); an SDK that is imported but not initialised
  reports nothing.

``core.tracing`` validates every value; this only copies them.
"""

from __future__ import annotations

import sys
from typing import Any


def add_worker_trace(data: dict[str, Any], *, failure: bool) -> None:
    """Put the worker's trace identifiers into a failure's or retry's ``data``, when known.

    Never raises: a tracing SDK's surprise must not cost the failure event itself.
    """
    modules = sys.modules
    otel = modules.get("opentelemetry.trace")
    if otel is not None:
        try:
            context = otel.get_current_span().get_span_context()
            if context.is_valid:
                data["trace_id"] = format(context.trace_id, "032x")
                data["span_id"] = format(context.span_id, "016x")
        except Exception:  # an SDK's bug; the failure is still reported
            pass
    sentry = modules.get("sentry_sdk")
    if sentry is not None:
        try:
            client = sentry.get_client()
            if client.is_active():
                data["sentry_trace"] = sentry.get_traceparent()
                if failure:
                    data["sentry_event_id"] = sentry.last_event_id()
        except Exception:  # an SDK without these calls (Sentry 1.x) reports nothing
            pass
