"""``/api/beat``: celery beat schedule entries, their runs over time and the runs they missed.

A task is a beat run when the schedule entry that sent it is known (``beat_entry``; see
docs/events.md). Judgments come from ``server.beat_runs``, shared with the attention view and
the ``beat_missed`` alert rule. The models live here: nothing else in the API returns them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from stemtrace.core.beat import Missed
from stemtrace.core.states import TaskState
from stemtrace.server import beat_runs
from stemtrace.server.api.deps import server
from stemtrace.server.api.errors import ApiError
from stemtrace.server.api.mapping import iso
from stemtrace.server.api.params import check_cursor, parse_time
from stemtrace.server.api.routing import OneTripRouter
from stemtrace.server.api.schemas import ErrorBody
from stemtrace.server.context import ServerContext
from stemtrace.server.store.beat import BeatRun

router = OneTripRouter(prefix="/api")
Ctx = Annotated[ServerContext, Depends(server)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "invalid parameter"},
}


class BeatRunOut(BaseModel):
    task_id: str
    name: str | None
    state: TaskState = Field(description="the run's task state: its outcome once final")
    sent_at: datetime = Field(description="when beat sent it")
    finished_at: datetime | None = None
    runtime_ms: float | None = None
    exception_type: str | None = None


class MissedRunOut(BaseModel):
    after: datetime = Field(description="the last run sent before the gap")
    before: datetime | None = Field(description="the first run sent after it; null while the gap is open")
    missed: int = Field(description="runs the observed interval expected in the gap")
    due: datetime = Field(description="when the first missed run was due")


_SOURCE = (
    "the event source (`--source NAME`) whose beat sends the entry: an entry is a name within one "
    "source; empty for the one unlabelled source"
)


class BeatEntryOut(BaseModel):
    entry: str = Field(description="the schedule entry's name (the task's name when beat only marked it)")
    source: str = Field("", description=_SOURCE)
    task_name: str | None
    interval_s: float | None = Field(description="observed interval: the median gap between recent runs")
    last_run: BeatRunOut | None
    runs: int = Field(description="runs sent since `since`")
    missed: list[MissedRunOut] = Field(
        description="gaps longer than the interval since `since`, oldest first"
    )
    recent: list[BeatRunOut] = Field(description=f"the latest {beat_runs.RECENT} runs, newest first")


class BeatList(BaseModel):
    since: datetime
    items: list[BeatEntryOut]


class BeatEntryPage(BaseModel):
    entry: str
    source: str = Field("", description=_SOURCE)
    interval_s: float | None
    runs: list[BeatRunOut] = Field(description="newest first")
    missed: list[MissedRunOut] = Field(
        description="gaps between this page's runs (and since the last, on page 1)"
    )
    next_cursor: str | None


def _run(r: BeatRun) -> BeatRunOut:
    return BeatRunOut(
        task_id=r.task_id,
        name=r.name,
        state=TaskState(r.state),
        sent_at=iso(r.sent_at),  # type: ignore[arg-type]
        finished_at=iso(r.finished_at),
        runtime_ms=r.runtime_ms,
        exception_type=r.exception_type,
    )


def _missed(m: Missed) -> MissedRunOut:
    return MissedRunOut(after=iso(m.after), before=iso(m.before), missed=m.missed, due=iso(m.due))  # type: ignore[arg-type]


@router.get("/beat", response_model=BeatList, responses=_RESPONSES, summary="Celery beat schedule entries")
def list_entries(
    ctx: Ctx,
    since: Annotated[
        str | None, Query(description="start of the window runs are counted in (default: a day ago)")
    ] = None,
    source: Annotated[str | None, Query(description="only the entries of this event source")] = None,
) -> BeatList:
    now = time.time()
    start = parse_time("since", since)
    start = now - beat_runs.WINDOW_S if start is None else start
    views = beat_runs.overview(ctx.store, now, start, source or None)
    return BeatList(
        since=iso(start),  # type: ignore[arg-type]
        items=[
            BeatEntryOut(
                entry=v.entry,
                source=v.source,
                task_name=v.task_name,
                interval_s=v.interval,
                last_run=_run(v.last) if v.last else None,
                runs=v.runs,
                missed=[_missed(m) for m in v.missed],
                recent=[_run(r) for r in v.recent],
            )
            for v in views
        ],
    )


@router.get(
    "/beat/{entry:path}",
    response_model=BeatEntryPage,
    responses={
        **_RESPONSES,
        404: {"model": ErrorBody, "description": "no runs of this entry"},
        422: {
            "model": ErrorBody,
            "description": "invalid parameter, or an entry of several sources without source=",
        },
    },
    summary="One schedule entry's runs, newest first",
)
def entry_runs(
    ctx: Ctx,
    entry: str,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (default 100)")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    source: Annotated[
        str | None,
        Query(description="the event source whose entry this is; needed only when several sources have it"),
    ] = None,
) -> BeatEntryPage:
    cursor = check_cursor(cursor)
    source = source if source is not None else _only_source(ctx, entry)
    sent = ctx.store.beat_sent_times(entry, beat_runs.SAMPLE, source)
    if not sent:
        raise ApiError(404, f"no runs of a beat entry named {entry[:80]!r}")
    every = beat_runs.interval(sent)
    found, nxt = ctx.store.beat_runs(entry, limit, cursor, source)
    misses = beat_runs.page_misses(found, every, None if cursor else time.time())
    return BeatEntryPage(
        entry=entry,
        source=source,
        interval_s=every,
        runs=[_run(r) for r in found],
        missed=[_missed(m) for m in misses],
        next_cursor=nxt,
    )


def _only_source(ctx: ServerContext, entry: str) -> str:
    """The source of ``entry`` when the request names none: its only one, else a 422 that lists
    them (two apps' entries of one name are two schedules, never merged)."""
    sources = [src for name, src in ctx.store.beat_entries() if name == entry]
    if len(sources) > 1:
        raise ApiError(
            422, f"beat entry {entry[:80]!r} runs in several sources ({', '.join(sources)}): pass source="
        )
    return sources[0] if sources else ""
