"""``/api/tasks.csv``: any filtered task list as CSV, streamed page by page.

The filters are the task list's own (:mod:`stemtrace.server.api.filters`), so a spreadsheet holds exactly what
the Tasks page showed, and they are written into the file name. Rows are read from the store in
keyset pages while the response streams, so a large export never sits in memory.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse

from stemtrace.server.api import mapping as m
from stemtrace.server.api.deps import server
from stemtrace.server.api.filters import Filters
from stemtrace.server.api.routing import OneTripRouter
from stemtrace.server.context import ServerContext
from stemtrace.server.store import TaskQuery

router = OneTripRouter(prefix="/api")
Ctx = Annotated[ServerContext, Depends(server)]
PAGE = 1000
COLUMNS = (
    "id", "name", "state", "workflow_id", "parent_id", "root_id", "group_id", "worker", "queue",
    "retries", "sent_at", "received_at", "started_at", "finished_at", "runtime_ms", "exception_type",
    "args_preview",
)  # fmt: skip
# A cell a spreadsheet would run as a formula is written as text (OWASP's CSV-injection advice).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@router.get(
    "/tasks.csv",
    summary="The filtered task list as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per task, newest first"}},
)
def export_tasks(
    ctx: Ctx,
    filters: Filters,
    max_rows: Annotated[int, Query(ge=1, le=1_000_000, description="stop after this many rows")] = 100_000,
) -> StreamingResponse:
    query = replace(filters, limit=PAGE, cursor=None)
    return StreamingResponse(
        _rows(ctx, query, max_rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file_name(query)}"'},
    )


def _rows(ctx: ServerContext, query: TaskQuery, max_rows: int) -> Iterator[str]:
    """CSV text, a page of rows at a time (a plain iterator: Starlette runs it in its threadpool)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    written = 0
    page_query = query
    while written < max_rows:
        page = ctx.store.list_tasks(replace(page_query, limit=min(PAGE, max_rows - written)))
        for record in page.items:
            row = m.task_summary(record).model_dump(mode="json")
            writer.writerow([_cell(row.get(column)) for column in COLUMNS])
        written += len(page.items)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if not page.next_cursor or not page.items:
            return
        page_query = replace(page_query, cursor=page.next_cursor)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


def file_name(query: TaskQuery) -> str:
    """``stemtrace-tasks_state-FAILURE_name-ship_parcel_20261207T0455Z.csv``: the filters, then the time."""
    parts = ["stemtrace-tasks"]
    pairs: list[tuple[str, Any]] = [
        ("state", ",".join(state.value for state in query.states)),
        ("name", query.name),
        ("exception", ",".join(query.exception_types or ())),
        ("worker", query.worker),
        ("queue", query.queue),
        ("routing_key", query.routing_key),
        ("source", query.source),
        ("group", query.group),
        ("parent", query.parent),
        ("beat", query.beat),
        ("workflow", query.workflow),
        ("q", query.q),
    ]
    for key, value in pairs:
        if value:
            parts.append(f"{key}-{_slug(str(value))}")
    parts.append(time.strftime("%Y%m%dT%H%MZ", time.gmtime()))
    return "_".join(parts) + ".csv"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.,@-]+", "_", text)[:40].strip("_") or "x"
