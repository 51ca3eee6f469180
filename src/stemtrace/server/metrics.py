"""``/metrics`` in the Prometheus text exposition format (no client library needed).

The server's own health here; the Celery task and worker metrics, from the store's roll-ups,
in ``task_metrics``. Nothing here counts rows of a big table.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends
from fastapi.responses import PlainTextResponse

from stemtrace.core.gaps import CAUSES
from stemtrace.server import library_reports
from stemtrace.server.api.deps import server
from stemtrace.server.api.routing import OneTripRouter
from stemtrace.server.context import ServerContext
from stemtrace.server.task_metrics import render_tasks

router = OneTripRouter(include_in_schema=False)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(ctx: ServerContext) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    st = ctx.ingestor.stats if ctx.ingestor is not None else None
    try:
        counters = ctx.store.counters(library=False)
        store_up = 1.0
    except Exception:
        counters, store_up = {}, 0.0
    metric("stemtrace_store_up", "gauge", "1 when the store answers.", [("", store_up)])
    metric(
        "stemtrace_ingest_up",
        "gauge",
        "1 when ingest is consuming normally.",
        [("", 1.0 if st is not None and st.status == "ok" else 0.0)],
    )
    metric(
        "stemtrace_ingest_events_total",
        "counter",
        "Events applied by this replica (redeliveries included).",
        [("", float(st.events if st else 0))],
    )
    metric(
        "stemtrace_ingest_stored_events_total",
        "counter",
        "Events new to the store, by this replica.",
        [("", float(st.stored if st else 0))],
    )
    metric(
        "stemtrace_ingest_batches_total",
        "counter",
        "Transactions committed by this replica.",
        [("", float(st.batches if st else 0))],
    )
    metric(
        "stemtrace_ingest_rate",
        "gauge",
        "Events per second over the last 10 s.",
        [("", st.rate if st else 0.0)],
    )
    if st is not None and st.lag is not None:
        metric("stemtrace_ingest_lag", "gauge", "Messages waiting in the broker.", [("", float(st.lag))])
    if st is not None:
        lag_s = st.lag_seconds(time.time())
        if lag_s is not None:
            metric(
                "stemtrace_ingest_lag_seconds",
                "gauge",
                "0 when caught up, else the seconds since ingest last had nothing waiting.",
                [("", lag_s)],
            )
        metric(
            "stemtrace_ingest_restarts_total",
            "counter",
            "Times the ingest loop was restarted after a crash.",
            [("", float(st.restarts))],
        )
        metric(
            "stemtrace_events_repaired_total",
            "counter",
            "Events stored after repair at the ingest edge, by what was repaired (this replica).",
            [(f'{{reason="{_label(k)}"}}', float(v)) for k, v in sorted(st.repaired.items())],
        )
    metric(
        "stemtrace_events_quarantined_total",
        "counter",
        "Events set aside instead of stored, by reason (all replicas; GET /api/quarantine).",
        [(f'{{reason="{_label(k)}"}}', float(v)) for k, v in sorted(counters.get("quarantined", {}).items())],
    )
    malformed = counters.get("malformed", {})
    metric(
        "stemtrace_malformed_events_total",
        "counter",
        "Events skipped as malformed, by kind (all replicas).",
        [(f'{{kind="{_label(k)}"}}', float(v)) for k, v in sorted(malformed.items())],
    )
    try:  # sequence gaps recorded as losses (server/losses.py)
        lost: dict[str, int] = ctx.store.loss_report(time.time())["by_cause"]
    except Exception:
        lost = {}
    metric(
        "stemtrace_events_lost_total",
        "counter",
        "Events known lost (sequence gaps past the grace period), by cause (all replicas).",
        [(f'{{cause="{_label(c)}"}}', float(lost.get(c, 0))) for c in sorted({*CAUSES, *lost})],
    )
    try:  # up to 5 s old: see its module
        lines.extend(library_reports.latest(ctx.store).exposition())
    except Exception:
        lines.extend(library_reports.LibraryReports([]).exposition())
    metric(
        "stemtrace_workflows", "gauge", "Workflows stored.", [("", float(counters.get("workflows", 0) or 0))]
    )
    lines.extend(render_tasks(ctx))
    metric(
        "stemtrace_up_seconds",
        "gauge",
        "Seconds since this server started.",
        [("", time.time() - ctx.started_at)],
    )
    return "\n".join(lines) + "\n"


@router.get("/metrics")
def metrics(ctx: ServerContext = Depends(server)) -> PlainTextResponse:  # noqa: B008
    return PlainTextResponse(
        ctx.recent_metrics.get(lambda: render(ctx)), media_type="text/plain; version=0.0.4"
    )
