"""Health, workers, aggregates for the dashboard pages, and the live stream."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from stemtrace import __version__
from stemtrace.server import attention, library_reports
from stemtrace.server.api import health_schemas as h
from stemtrace.server.api import mapping
from stemtrace.server.api import schemas as s
from stemtrace.server.api.deps import server
from stemtrace.server.api.errors import ApiError
from stemtrace.server.api.params import parse_time
from stemtrace.server.api.routing import OneTripRouter
from stemtrace.server.context import ServerContext
from stemtrace.server.live import TOPICS, StreamFilter, sse_messages
from stemtrace.server.losses import GRACE_S, RECENT_S, loss_summary
from stemtrace.server.quarantine import RECENT_S as QUARANTINE_RECENT_S
from stemtrace.server.store import StoreError
from stemtrace.server.store.schema import LATEST
from stemtrace.transport import mask_url

router = OneTripRouter(prefix="/api")
Ctx = Annotated[ServerContext, Depends(server)]
Time = Annotated[str | None, Query(description="ISO-8601 time or epoch seconds")]
Source = Annotated[str | None, Query(description="only what came from this event source (its --source NAME)")]


@router.get(
    "/health",
    response_model=h.Health,
    summary="Ingest and store health",
    description="With authentication on, a request without valid credentials (a load balancer's "
    'probe) gets only `{"status": "ok" | "degraded"}`; the details need credentials. `library` '
    "(each library process's latest report, sent every 30 s) is as read at most 5 s ago.",
)
def health(ctx: Ctx, request: Request) -> h.Health | JSONResponse:
    full = _health(ctx)
    if getattr(request.state, "authenticated", True):
        return full
    return JSONResponse({"status": full.status})


def _health(ctx: ServerContext) -> h.Health:
    store_error = None
    counters: dict[str, object] = {}
    library = None
    try:
        ctx.store.ping()
        counters = ctx.store.counters(library=False)
        library = library_reports.latest(ctx.store)  # up to 5 s old: see its module
    except StoreError as exc:
        store_error = str(exc)
    except Exception as exc:
        store_error = f"{type(exc).__name__}"
    ing = ctx.ingestor
    st = ing.stats if ing is not None else None
    malformed: dict[str, int] = dict(counters.get("malformed", {}) or {})  # type: ignore[call-overload]
    ingest = h.IngestHealth(
        enabled=ing is not None,
        status=st.status if st else "disabled",
        error=st.error if st else None,
        source=ctx.source_description,
        events=st.events if st else 0,
        stored=st.stored if st else 0,
        batches=st.batches if st else 0,
        rate_per_s=round(st.rate, 1) if st else 0.0,
        lag=st.lag if st else None,
        last_commit_at=mapping.iso(st.last_commit_at) if st else None,
        malformed=malformed,
        quarantined=dict(counters.get("quarantined", {}) or {}),  # type: ignore[call-overload]
        repaired=dict(st.repaired) if st else {},
        restarts=st.restarts if st else 0,
        lag_seconds=_rounded(st.lag_seconds(time.time())) if st else None,
        subscription=ctx.subscription,
        subscriptions=[h.Subscription(**sub) for sub in (ing.subscriptions() if ing is not None else [])],
        sources=[
            h.SourceHealth(
                name=i.source,
                url=mask_url(i.config.url),
                status=i.stats.status,
                error=i.stats.error,
                events=i.stats.events,
                lag=i.stats.lag,
            )
            for i in ctx.labelled_ingestors
        ],
    )
    reasons = _problems(ctx, store_error, counters)
    losses = _losses(ctx) if store_error is None else None
    if losses is not None and losses.recent:
        causes = ", ".join(f"{n} {c}" for c, n in sorted(losses.by_cause.items()))
        reasons.append(f"losses: {losses.recent} event(s) recorded lost in the last hour (in all: {causes})")
    degraded = bool(reasons)
    return h.Health(
        status="degraded" if degraded else "ok",
        reasons=reasons,
        version=__version__,
        ingest=ingest,
        store=h.StoreHealth(
            url=getattr(ctx.store, "description", "?"),
            ok=store_error is None,
            error=store_error,
            schema_version=LATEST,
            workflows=counters.get("workflows"),  # type: ignore[arg-type]
        ),
        library=h.LibraryHealth(
            processes=len(library.reports) if library else 0,
            sent=library.sent if library else 0,
            dropped=library.dropped if library else 0,
            errors=library.errors if library else 0,
            sources=library.reports[: library_reports.SHOWN] if library else [],
        ),
        retention=_retention(ctx),
        losses=losses,
    )


def _losses(ctx: ServerContext) -> h.Losses | None:
    """Sequence gaps recorded as losses (``server/losses.py``); None when they cannot be read."""
    try:
        report = loss_summary(ctx.store, time.time())
    except Exception:
        return None
    return h.Losses(
        total=report["total"],
        recent=report["recent"],
        recent_window_s=RECENT_S,
        grace_s=ctx.losses.grace if ctx.losses is not None else GRACE_S,
        by_cause=report["by_cause"],
        latest=[
            h.LossRecord(
                **{k: v for k, v in r.items() if k not in ("start_ts", "end_ts", "detected_at")},
                start=mapping.iso(r["start_ts"]),
                end=mapping.iso(r["end_ts"]),
                detected_at=mapping.iso(r["detected_at"]),
            )
            for r in report["latest"]
        ],
    )


def _retention(ctx: ServerContext) -> h.Retention:
    """The retention in force (the UI shows it), with what this server's maintenance did."""
    m = ctx.maintenance
    return h.Retention(
        retention_s=ctx.settings.retention,
        failure_retention_s=ctx.settings.failure_retention,
        max_tasks=ctx.settings.max_tasks or None,
        expired_workflows=m.expired if m else 0,
        evicted_workflows=m.evicted if m else 0,
        behind=m.behind if m else False,
        last_run_at=mapping.iso(m.last_run_at) if m else None,
    )


def _problems(ctx: ServerContext, store_error: str | None, counters: dict[str, object]) -> list[str]:
    """Why the server is ``degraded``: the store, ingest (stalled, lagging, crashed), quarantine."""
    now = time.time()
    out = [f"store: {store_error}"] if store_error is not None else []
    for ingestor in ctx.ingestors:
        out += [p for p in ingestor.problems(now) if store_error is None or "store" not in p]
    last = counters.get("last_quarantined_at")
    if isinstance(last, float) and now - last < QUARANTINE_RECENT_S:
        total = sum(dict(counters.get("quarantined", {}) or {}).values())  # type: ignore[call-overload]
        ago = now - last
        out.append(f"quarantine: events set aside {ago:.0f} s ago ({total} in all; GET /api/quarantine)")
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@router.get(
    "/quarantine",
    response_model=h.QuarantineList,
    summary="Events ingest set aside instead of storing, by reason and event type",
)
def quarantine(ctx: Ctx) -> h.QuarantineList:
    return h.QuarantineList(
        items=[
            h.QuarantineEntry(
                **{**q, "first_seen": mapping.iso(q["first_seen"]), "last_seen": mapping.iso(q["last_seen"])}
            )
            for q in ctx.store.quarantine()
        ]
    )


@router.get("/workers", response_model=s.WorkerList, summary="Workers seen, online or not")
def workers(
    ctx: Ctx,
    expired: Annotated[
        bool, Query(description="include workers offline for longer than --worker-retention")
    ] = False,
    source: Source = None,
) -> s.WorkerList:
    now, beat = time.time(), ctx.settings.expected_heartbeat_interval
    items, hidden = [], 0
    for rec, online in attention.workers(ctx.store, now, beat, source or None):
        status = rec.status(now, beat, ctx.settings.worker_retention)
        if status == "expired" and not expired:
            hidden += 1
            continue
        items.append(mapping.worker_out(rec.to_dict(), online, status))
    return s.WorkerList(items=items, expired=hidden)


@router.get("/task-names", response_model=s.TaskNameList, summary="Task names with stored counts")
def task_names(ctx: Ctx, source: Source = None) -> s.TaskNameList:
    found = ctx.store.task_names(source or None)
    return s.TaskNameList(items=[s.TaskName(name=n, count=c) for n, c in found])


@router.get(
    "/failures", response_model=s.FailureList, summary="Failures grouped by task name and exception type"
)
def failures(  # noqa: PLR0917
    ctx: Ctx,
    since: Time = None,
    until: Time = None,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: Source = None,
) -> s.FailureList:
    start, end = parse_time("since", since), parse_time("until", until)
    rows = ctx.store.failures(start, end, name, limit, source=source or None)
    return s.FailureList(
        items=[s.FailureGroup(**{**r, "last_seen": mapping.iso(r["last_seen"])}) for r in rows]
    )


@router.get(
    "/stats/tasks", response_model=s.TaskStatsList, summary="Per task name: counts, failure rate, runtimes"
)
def task_stats(  # noqa: PLR0917
    ctx: Ctx,
    since: Time = None,
    until: Time = None,
    name: str | None = None,
    buckets: Annotated[int, Query(ge=1, le=500)] = 60,
    source: Source = None,
) -> s.TaskStatsList:
    end = parse_time("until", until) or time.time()
    start = parse_time("since", since)
    start = end - 86400.0 if start is None else start
    if start >= end:
        raise ApiError(422, "since must be before until")
    rows = ctx.store.task_stats(start, end, name, buckets, source=source or None)
    return s.TaskStatsList(
        items=[
            s.TaskStats(
                **{
                    **r,
                    "series": [
                        s.SeriesPoint(
                            t=datetime.fromtimestamp(p["t"], tz=timezone.utc),
                            succeeded=p["succeeded"],
                            failed=p["failed"],
                        )
                        for p in r["series"]
                    ],
                }
            )
            for r in rows
        ]
    )


@router.get("/stuck", response_model=s.StuckList, summary="Tasks that look stuck")
def stuck(ctx: Ctx, source: Source = None) -> s.StuckList:
    found = attention.stuck_tasks(
        ctx.store, time.time(), ctx.settings.expected_heartbeat_interval, source or None
    )
    return s.StuckList(
        items=[
            s.StuckOut(
                task_id=t.task_id,
                name=t.name,
                state=t.state,
                reason=t.reason,
                detail=t.detail,
                since=mapping.iso(t.since),
            )
            for t in found
        ]
    )


@router.get(
    "/stream",
    summary="Server-Sent Events announcing changed tasks, workflows and workers",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
def stream(
    ctx: Ctx,
    topics: Annotated[
        str, Query(description="comma-separated: tasks, workflows, workers")
    ] = "tasks,workflows,workers",
    workflow: Annotated[str | None, Query(description="only changes in this workflow")] = None,
    task: Annotated[str | None, Query(description="only changes of this task")] = None,
) -> StreamingResponse:
    wanted = frozenset(t.strip() for t in topics.split(",") if t.strip())
    if not wanted or not wanted <= TOPICS:
        raise ApiError(
            422, f"invalid topics {topics[:60]!r}; use a comma-separated subset of tasks, workflows, workers"
        )
    resolved = ctx.store.resolve_workflow(workflow) or workflow if workflow else None
    assert ctx.hub is not None
    flt = StreamFilter(topics=wanted, workflow=resolved, task=task)
    return StreamingResponse(
        sse_messages(ctx.hub, flt),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
