"""``celery -A tests.support.traced_worker_app worker``: the test app in a worker that runs
OpenTelemetry's Celery instrumentation or Sentry's Celery integration, set up as their own
documentation says (``STEMTRACE_TEST_TRACING`` is ``otel`` or ``sentry``).

- ``otel``: ``CeleryInstrumentor`` in each pool process (``worker_process_init``), spans kept by
  an in-memory exporter; the task ``t.spans`` returns the finished ones, so a test reads the
  worker's real spans.
- ``sentry``: ``sentry_sdk.init`` with the Celery integration when the worker starts
  (``celeryd_init``), its DSN pointing at a test's local HTTP sink (``STEMTRACE_TEST_DSN``).
"""

from __future__ import annotations

import os
from typing import Any

from celery import signals
from tests.support.app import AppSettings, make_app

tasks = make_app(AppSettings.from_env())
app = tasks.app
MODE = os.environ.get("STEMTRACE_TEST_TRACING", "")
_exporter: Any = None


if MODE == "otel":

    @signals.worker_process_init.connect(weak=False)
    def _instrument(**_: Any) -> None:
        global _exporter
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


if MODE == "sentry":

    @signals.celeryd_init.connect(weak=False)
    def _init_sentry(**_: Any) -> None:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration

        sentry_sdk.init(
            dsn=os.environ["STEMTRACE_TEST_DSN"],
            integrations=[CeleryIntegration()],
            traces_sample_rate=1.0,
        )


@app.task(name="t.spans", shared=False)
def spans() -> list[dict[str, Any]]:
    """The spans this pool process finished so far: name, ids, parent, the task id."""
    if _exporter is None:
        return []
    out = []
    for span in _exporter.get_finished_spans():
        context = span.get_span_context()
        out.append(
            {
                "name": span.name,
                "trace_id": format(context.trace_id, "032x"),
                "span_id": format(context.span_id, "016x"),
                "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
                "task_id": (span.attributes or {}).get("messaging.message.id"),
            }
        )
    return out
