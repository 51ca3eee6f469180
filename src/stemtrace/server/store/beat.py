"""The celery beat runs: tasks whose ``beat_entry`` column names the schedule entry that sent them.

A column on ``tasks`` rather than a table of its own: a run's outcome is its task's state, kept
current by the same write, and retention removes a run with its task. The partial index
``tasks_beat (beat_entry, source, sort_ts)`` (declared in ``task_row.TASK_TABLE``) holds the beat
runs only, so every query here is an index range: the entry list is a skip scan (one seek per
entry and source, however many runs), an entry's runs are newest first on ``sort_ts`` like every
other list.

An entry is a name within one event source (``--source``): two apps' beats each have their own
``celery.backend_cleanup``, with their own interval and misses, so every read takes the source
(``""`` for the one unlabelled source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stemtrace.server.store.base import encode_cursor
from stemtrace.server.store.read import Reader

MAX_ENTRIES = 500  # a beat schedule has tens of entries; a bound keeps a runaway one cheap

_RUN_COLUMNS = "id, name, state, sort_ts, finished_at, runtime_ms, exception_type"


@dataclass(frozen=True, slots=True)
class BeatRun:
    task_id: str
    name: str | None
    state: str
    sent_at: float  # the task's sort_ts: when beat sent it (or first seen, without a publish)
    finished_at: float | None
    runtime_ms: float | None
    exception_type: str | None


def entries(r: Reader, source: str | None = None) -> list[tuple[str, str]]:
    """Every (entry, source) with runs, by name then source (``source``: of that source only):
    a skip scan of the partial index, one seek per pair."""
    names = r.q(
        "WITH RECURSIVE e(name) AS ("
        " SELECT MIN(beat_entry) FROM tasks WHERE beat_entry IS NOT NULL"
        " UNION ALL"
        " SELECT (SELECT MIN(beat_entry) FROM tasks WHERE beat_entry > e.name) FROM e"
        " WHERE e.name IS NOT NULL"
        f") SELECT name FROM e WHERE name IS NOT NULL LIMIT {MAX_ENTRIES}"
    )
    out: list[tuple[str, str]] = []
    for (name,) in names:
        if source is not None:
            if r.q("SELECT 1 FROM tasks WHERE beat_entry = ? AND source = ? LIMIT 1", [name, source]):
                out.append((str(name), source))
        else:
            out.extend((str(name), src) for src in entry_sources(r, str(name)))
        if len(out) >= MAX_ENTRIES:
            break
    return out[:MAX_ENTRIES]


def entry_sources(r: Reader, entry: str) -> list[str]:
    """The sources with runs of ``entry``: one seek each on the index's second column."""
    found: list[str] = []
    below = r.q("SELECT MIN(source) FROM tasks WHERE beat_entry = ?", [entry])
    nxt = below[0][0] if below else None
    while nxt is not None:
        found.append(str(nxt))
        step = r.q("SELECT MIN(source) FROM tasks WHERE beat_entry = ? AND source > ?", [entry, nxt])
        nxt = step[0][0] if step else None
    return found


def runs(
    r: Reader, entry: str, source: str, limit: int, cursor: str | None = None
) -> tuple[list[BeatRun], str | None]:
    """An entry's runs, newest first, and the cursor of the next page."""
    where, params = Reader._below(["beat_entry = ?", "source = ?"], [entry, source], cursor)
    clause = " AND ".join(where)
    found = r.q(
        f"SELECT {_RUN_COLUMNS} FROM tasks WHERE {clause} ORDER BY sort_ts DESC, id DESC LIMIT ?",
        [*params, limit + 1],
    )
    items = [_run(row) for row in found[:limit]]
    nxt = encode_cursor(items[-1].sent_at, items[-1].task_id) if len(found) > limit else None
    return items, nxt


def sent_times(r: Reader, entry: str, source: str, limit: int) -> list[float]:
    """When the latest ``limit`` runs were sent, oldest first."""
    found = r.q(
        "SELECT sort_ts FROM tasks WHERE beat_entry = ? AND source = ?"
        " ORDER BY sort_ts DESC, id DESC LIMIT ?",
        [entry, source, limit],
    )
    return [float(ts) for (ts,) in reversed(found)]


def count_since(r: Reader, entry: str, source: str, since: float) -> int:
    found = r.q(
        "SELECT COUNT(*) FROM tasks WHERE beat_entry = ? AND source = ? AND sort_ts >= ?",
        [entry, source, since],
    )
    return int(found[0][0])


@dataclass(frozen=True, slots=True)
class EntryReads:
    """What the Beat overview reads of one entry, in one connection with the others."""

    entry: str
    source: str  # the event source whose beat sends it ("" for the one unlabelled source)
    sent: list[float]  # the latest runs' send times, oldest first (``sent_times``)
    recent: list[BeatRun]  # newest first
    count: int  # runs since the window began


def overview(
    r: Reader, since: float, sample: int, recent: int, source: str | None = None
) -> list[EntryReads]:
    """Every entry's reads for the overview: a handful of index ranges per entry, one connection."""
    return [
        EntryReads(
            entry,
            src,
            sent_times(r, entry, src, sample),
            runs(r, entry, src, recent)[0],
            count_since(r, entry, src, since),
        )
        for entry, src in entries(r, source)
    ]


def _run(row: tuple[Any, ...]) -> BeatRun:
    return BeatRun(
        task_id=row[0],
        name=row[1],
        state=row[2],
        sent_at=float(row[3]),
        finished_at=row[4],
        runtime_ms=row[5],
        exception_type=row[6],
    )
