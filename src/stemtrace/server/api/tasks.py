"""``/api/tasks`` and ``/api/workflows``: lists with keyset pagination, details, graphs.

Routes are plain ``def``: FastAPI runs them in its threadpool, so blocking database
calls never stall the event loop that serves the live stream.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from stemtrace.core.tracing import LinkTemplates
from stemtrace.core.workflow import build_workflow
from stemtrace.server.api import mapping as m
from stemtrace.server.api import schemas as s
from stemtrace.server.api.deps import server
from stemtrace.server.api.errors import ApiError
from stemtrace.server.api.filters import Filters
from stemtrace.server.api.graph_json import workflow_graph_json
from stemtrace.server.api.params import (
    check_cursor,
    parse_time,
    parse_workflow_states,
)
from stemtrace.server.api.routing import OneTripRouter
from stemtrace.server.context import ServerContext
from stemtrace.server.graph_cache import gc_paused
from stemtrace.server.losses import with_missing_flag, workflow_flag
from stemtrace.server.store import WorkflowQuery
from stemtrace.server.store.fanout import COLLAPSE_OVER

router = OneTripRouter(prefix="/api")
Ctx = Annotated[ServerContext, Depends(server)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size (default 50, at most 1000)")]
Time = Annotated[
    str | None, Query(description="ISO-8601 time (UTC unless an offset is given) or epoch seconds")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": s.ErrorBody, "description": "unknown id"}}
BAD_INPUT: dict[int | str, dict[str, Any]] = {422: {"model": s.ErrorBody, "description": "invalid parameter"}}
# A graph of at least this many tasks is built with the cyclic GC paused (see ``gc_paused``).
GC_PAUSE_TASKS = 1_000


@router.get("/tasks", response_model=s.TaskPage, responses=BAD_INPUT, summary="List tasks, newest first")
def list_tasks(
    ctx: Ctx,
    filters: Filters,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> s.TaskPage:
    page = ctx.store.list_tasks(replace(filters, limit=limit, cursor=check_cursor(cursor)))
    return s.TaskPage(items=[m.task_summary(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/tasks/{task_id}", response_model=s.TaskDetail, responses=NOT_FOUND, summary="One task")
def get_task(ctx: Ctx, task_id: str) -> s.TaskDetail:
    detail = ctx.store.get_task(task_id)
    if detail is None:
        raise ApiError(404, f"no task with id {task_id[:80]!r}")
    settings = ctx.settings
    return m.task_detail(detail, LinkTemplates(settings.trace_url, settings.sentry_url))


@router.get(
    "/workflows", response_model=s.WorkflowPage, responses=BAD_INPUT, summary="List workflows, newest first"
)
def list_workflows(  # noqa: PLR0917
    ctx: Ctx,
    state: Annotated[
        list[str] | None, Query(description="RUNNING, SUCCESS, FAILURE or REVOKED; may be repeated")
    ] = None,
    name: Annotated[str | None, Query(description="the root task's name")] = None,
    source: Annotated[
        str | None, Query(description="workflows from this event source (its --source NAME)")
    ] = None,
    since: Time = None,
    until: Time = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> s.WorkflowPage:
    query = WorkflowQuery(
        states=parse_workflow_states(state),
        name=name,
        since=parse_time("since", since),
        until=parse_time("until", until),
        limit=limit,
        cursor=check_cursor(cursor),
        source=source or None,
    )
    page = ctx.store.list_workflows(query)
    return s.WorkflowPage(items=[m.workflow_summary(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/workflows/{workflow_id}",
    response_model=s.WorkflowGraphOut,
    responses=NOT_FOUND,
    summary="A workflow's graph",
)
def get_workflow(
    ctx: Ctx,
    workflow_id: str,
    plumbing: Annotated[
        bool, Query(description="include infrastructure tasks such as celery.chord_unlock")
    ] = False,
) -> s.WorkflowGraphOut:
    store = ctx.store
    resolved = store.resolve_workflow(workflow_id)
    row = store.get_workflow(resolved) if resolved else None
    key = (resolved, row.version, plumbing) if resolved and row is not None else None
    cached = ctx.graphs.get(key) if key is not None else None
    # Losses are recorded after graphs are built (and cached): the flag is added per request.
    missing = row is not None and workflow_flag(store, row)
    if cached is not None:
        return Response(with_missing_flag(cached, missing), media_type="application/json")  # type: ignore[return-value]
    with ctx.graphs.building(key) if key is not None else nullcontext():
        cached = ctx.graphs.peek(key) if key is not None else None
        if cached is not None:  # built by the request this one waited for
            return Response(with_missing_flag(cached, missing), media_type="application/json")  # type: ignore[return-value]
        big = row is not None and row.task_count >= GC_PAUSE_TASKS
        source = row.source if row is not None else ""
        with gc_paused() if big else nullcontext():
            # A huge workflow: its big sibling sets come collapsed, built without every record.
            huge = row is not None and row.task_count > COLLAPSE_OVER
            collapsed = store.collapsed_graph(row) if huge and row is not None else None
            if collapsed is not None:
                encoded = workflow_graph_json(replace(collapsed, shape=row.shape if row else None), source)
                if key is not None:
                    ctx.graphs.put(key, encoded)
                return Response(with_missing_flag(encoded, missing), media_type="application/json")  # type: ignore[return-value]
            records = store.workflow_skeletons(resolved) if resolved else []
            if not records or resolved is None:
                raise ApiError(404, f"no workflow or task with id {workflow_id[:80]!r}")
            # What ``WorkflowGraphOut`` would serialise, written without building the models.
            settled = row.settled_at if row is not None else None  # steps found never sent
            graph = build_workflow(resolved, records, show_plumbing=plumbing, settled_at=settled)
            # The shape is named once, with the summary the Workflows list shows (``core.shape``).
            encoded = workflow_graph_json(replace(graph, shape=row.shape if row else None), source)
            del graph
            del records  # freed before the collector is back, so it never walks them
        if key is not None:
            ctx.graphs.put(key, encoded)
    return Response(with_missing_flag(encoded, missing), media_type="application/json")  # type: ignore[return-value]
