"""The task list's filters, declared once for ``/api/tasks`` and ``/api/tasks.csv``.

A FastAPI dependency, so both routes accept exactly the same query parameters and a CSV export
holds what the Tasks page showed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from stemtrace.server.api.params import parse_exception_types, parse_states, parse_time
from stemtrace.server.store import TaskQuery

Time = Annotated[
    str | None, Query(description="ISO-8601 time (UTC unless an offset is given) or epoch seconds")
]


async def task_filters(  # noqa: PLR0917
    name: str | None = None,
    state: Annotated[list[str] | None, Query(description="task state; may be repeated")] = None,
    exception_type: Annotated[
        list[str] | None,
        Query(description="exact exception type, as in TaskSummary.exception_type; may be repeated"),
    ] = None,
    worker: str | None = None,
    queue: Annotated[str | None, Query(description="the queue the task was routed to")] = None,
    routing_key: Annotated[str | None, Query(description="the routing key it was sent with")] = None,
    q: Annotated[
        str | None,
        Query(
            description='task-id prefix, words or "a phrase" in captured values, key=value, -word to exclude'
        ),
    ] = None,
    since: Time = None,
    until: Time = None,
    workflow: Annotated[str | None, Query(description="workflow id or any member task id")] = None,
    group: Annotated[
        str | None, Query(description="members of this group or chord header (its group id)")
    ] = None,
    parent: Annotated[str | None, Query(description="children of this task (its id)")] = None,
    beat: Annotated[
        str | None,
        Query(description="runs of this celery beat schedule entry (its name, as /api/beat lists it)"),
    ] = None,
    source: Annotated[
        str | None, Query(description="tasks from this event source (its --source NAME)")
    ] = None,
) -> TaskQuery:
    """The filters as a :class:`TaskQuery` for the first page (routes set ``limit`` and ``cursor``).
    A coroutine: parsing needs no worker thread (``api/routing.py``)."""
    return TaskQuery(
        name=name,
        states=parse_states(state),
        worker=worker,
        queue=queue,
        routing_key=routing_key,
        q=q or None,
        since=parse_time("since", since),
        until=parse_time("until", until),
        workflow=workflow,
        exception_types=parse_exception_types(exception_type),
        group=group,
        parent=parent,
        beat=beat,
        source=source or None,
    )


Filters = Annotated[TaskQuery, Depends(task_filters)]
