"""Health, workers, aggregates for the dashboard pages, and the live stream."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from stemtrace import __version__
from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState
from stemtrace.core.stuck import overdue_tasks, unconsumed_tasks
from stemtrace.core.workers import WorkerRecord
from stemtrace.server.api import schemas as s
from stemtrace.server.api.deps import server
from stemtrace.server.api.errors import ApiError
from stemtrace.server.api.params import parse_time
from stemtrace.server.context import ServerContext
from stemtrace.server.live import TOPICS, StreamFilter, sse_messages
from stemtrace.server.store import StoreError, TaskRow
from stemtrace.server.store.schema import LATEST

router = APIRouter(prefix="/api")
Ctx = Annotated[ServerContext, Depends(server)]
Time = Annotated[str | None, Query(description="ISO-8601 time or epoch seconds")]


@router.get(
    "/health",
    response_model=s.Health,
    summary="Ingest and store health",
    description="With authentication on, a request without valid credentials (a load balancer's "
    'probe) gets only `{"status": "ok" | "degraded"}`; the details need credentials.',
)
def health(ctx: Ctx, request: Request) -> s.Health | JSONResponse:
    full = _health(ctx)
    if getattr(request.state, "authenticated", True):
        return full
    return JSONResponse({"status": full.status})


def _health(ctx: ServerContext) -> s.Health:
    store_error = None
    counters: dict[str, object] = {}
    try:
        ctx.store.ping()
        counters = ctx.store.counters()
    except StoreError as exc:
        store_error = str(exc)
    except Exception as exc:
        store_error = f"{type(exc).__name__}"
    ing = ctx.ingestor
    st = ing.stats if ing is not None else None
    malformed: dict[str, int] = dict(counters.get("malformed", {}) or {})  # type: ignore[call-overload]
    library = list(counters.get("library", []) or [])  # type: ignore[call-overload]
    ingest = s.IngestHealth(
        enabled=ing is not None,
        status=st.status if st else "disabled",
        error=st.error if st else None,
        source=ctx.source_description,
        events=st.events if st else 0,
        stored=st.stored if st else 0,
        batches=st.batches if st else 0,
        rate_per_s=round(st.rate, 1) if st else 0.0,
        lag=st.lag if st else None,
        last_commit_at=s.iso(st.last_commit_at) if st else None,
        malformed=malformed,
    )
    degraded = store_error is not None or (st is not None and st.status == "degraded")
    return s.Health(
        status="degraded" if degraded else "ok",
        version=__version__,
        ingest=ingest,
        store=s.StoreHealth(
            url=getattr(ctx.store, "description", "?"),
            ok=store_error is None,
            error=store_error,
            schema_version=LATEST,
            workflows=counters.get("workflows"),  # type: ignore[arg-type]
        ),
        library=s.LibraryHealth(
            processes=len(library),
            sent=sum(int(x.get("sent") or 0) for x in library),
            dropped=sum(int(x.get("dropped") or 0) for x in library),
            errors=sum(int(x.get("errors") or 0) for x in library),
            sources=library[:100],
        ),
    )


def _workers(ctx: ServerContext) -> list[tuple[WorkerRecord, bool]]:
    now = time.time()
    out = []
    for raw in ctx.store.list_workers():
        rec = WorkerRecord.from_dict(raw)
        out.append((rec, rec.is_online(now, ctx.settings.expected_heartbeat_interval)))
    return out


@router.get("/workers", response_model=s.WorkerList, summary="Workers seen, online or not")
def workers(ctx: Ctx) -> s.WorkerList:
    return s.WorkerList(items=[s.worker_out(rec.to_dict(), online) for rec, online in _workers(ctx)])


@router.get("/task-names", response_model=s.TaskNameList, summary="Task names with stored counts")
def task_names(ctx: Ctx) -> s.TaskNameList:
    return s.TaskNameList(items=[s.TaskName(name=n, count=c) for n, c in ctx.store.task_names()])


@router.get(
    "/failures", response_model=s.FailureList, summary="Failures grouped by task name and exception type"
)
def failures(
    ctx: Ctx,
    since: Time = None,
    until: Time = None,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> s.FailureList:
    rows = ctx.store.failures(parse_time("since", since), parse_time("until", until), name, limit)
    return s.FailureList(items=[s.FailureGroup(**{**r, "last_seen": s.iso(r["last_seen"])}) for r in rows])


@router.get(
    "/stats/tasks", response_model=s.TaskStatsList, summary="Per task name: counts, failure rate, runtimes"
)
def task_stats(
    ctx: Ctx,
    since: Time = None,
    until: Time = None,
    name: str | None = None,
    buckets: Annotated[int, Query(ge=1, le=500)] = 60,
) -> s.TaskStatsList:
    end = parse_time("until", until) or time.time()
    start = parse_time("since", since)
    start = end - 86400.0 if start is None else start
    if start >= end:
        raise ApiError(422, "since must be before until")
    rows = ctx.store.task_stats(start, end, name, buckets)
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
def stuck(ctx: Ctx) -> s.StuckList:
    now = time.time()
    store = ctx.store
    running = [_record(r) for r in store.stale_tasks([TaskState.STARTED], now - 60.0, 500)]
    pending = [_record(r) for r in store.stale_tasks([TaskState.PENDING], now - 60.0, 500)]
    p95 = {
        r["name"]: r["runtime_p95_ms"]
        for r in store.task_stats(now - 86400.0, now, None, 1)
        if r["runtime_p95_ms"] is not None and r["succeeded"] >= 20
    }
    online_queues = {q for rec, online in _workers(ctx) if online for q in rec.queues}
    found = overdue_tasks(running, p95, now)
    if any(online for _, online in _workers(ctx)):
        found += unconsumed_tasks(pending, online_queues)
    return s.StuckList(
        items=[
            s.StuckOut(
                task_id=t.task_id,
                name=t.name,
                state=t.state,
                reason=t.reason,
                detail=t.detail,
                since=s.iso(t.since),
            )
            for t in found
        ]
    )


def _record(r: TaskRow) -> TaskRecord:
    return TaskRecord(
        id=r.id,
        name=r.name,
        state=TaskState(r.state),
        queue=r.queue,
        sent_at=r.sent_at,
        started_at=r.started_at,
        worker=r.worker,
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
