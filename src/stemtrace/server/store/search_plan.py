"""Running a search: the plans that page through what ``q`` matches (``find``;
``store/search.py`` holds the document, the syntax and the index).

Every plan runs to completion below the cursor, newest first on ``(sort_ts, id)`` like the
plain list, so a page is full or it is the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from stemtrace.server.store.base import Page, TaskQuery, TaskRow, decode_cursor, encode_cursor
from stemtrace.server.store.db import Dialect
from stemtrace.server.store.search import Search, condition, fts_expression, kwargs_match, parse

# SQLite: a search whose words match fewer tasks than this reads them from the FTS index and
# sorts them; more, and walking the tasks newest first (probing the index for each) fills a
# page sooner. Both are complete; only their cost differs (benchmarks/search.py).
SPARSE_MAX = 4096
# The FTS queries per window of ``_windows`` at most (see ``_runs``): each costs ~0.3 ms, a
# range what it matches inside (~1 us each). Measured at 200k tasks: 4 ranges per window made a
# dense word filtered down to 1 task in 200 2x slower than a range per run.
RUNS_MAX = 64
# Rows read per round while ``key=value`` is checked against the stored kwargs.
VERIFY_CHUNK = 200
# Where a row of ``TaskRow``'s fields holds the ids its ``detail`` is read with (``body.pack``).
_IDS_AT = [tuple(TaskRow.__dataclass_fields__).index(f) for f in ("id", "root_id", "parent_id", "group_id")]


def _ids(row: Sequence[Any]) -> list[Any]:
    return [row[i] for i in _IDS_AT]


class _Reader(Protocol):
    d: Dialect

    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def find(r: _Reader, columns: str, query: TaskQuery, where: list[str], params: list[Any]) -> Page:
    """One page of the tasks ``query.q`` matches among those ``where`` admits, newest first.

    Pages are full or final: every part runs to completion below the cursor (the id-prefix
    range, the full-text match), so ``next_cursor`` is set only when more matches exist.
    """
    assert query.q is not None
    s = parse(query.q)
    want = query.limit + 1
    after = decode_cursor(query.cursor) if query.cursor else None
    found: dict[str, tuple[Any, ...]] = {}
    if s.id_prefix is not None:
        prefix = s.id_prefix
        id_where = [*where, "id >= ?", "id < ?"]
        id_params = [*params, prefix, prefix + "\U0010ffff"]
        cond, cparams = condition(r.d, Search(exclude=s.exclude))
        if cond is not None:
            id_where.append(cond)
            id_params += cparams
        # A prefix of 3+ characters is selective: read its primary-key range and sort it
        # (``sort_ts + 0`` keeps the planner off the sort index, which would walk every task
        # newest first looking for a rare id). A shorter one matches densely: walk newest first.
        order = "sort_ts + 0 DESC, id DESC" if len(prefix) >= 3 else "sort_ts DESC, id DESC"
        for row in _collect(r, f"SELECT {columns} FROM tasks", id_where, id_params, after, want, order, ()):
            found[row[0]] = row
    if s.include or s.exclude:
        if r.d.name == "sqlite":
            text_rows = _sqlite_text(r, columns, s, where, params, after, want)
        else:
            cond, cparams = condition(r.d, s)
            assert cond is not None
            head = f"SELECT {columns} FROM tasks"
            order = "sort_ts DESC, id DESC"
            text_rows = _collect(r, head, [*where, cond], [*params, *cparams], after, want, order, s.kwargs)
        for row in text_rows:
            found[row[0]] = row
    rows = sorted(found.values(), key=lambda row: (row[-1], row[0]), reverse=True)
    items = [TaskRow(*row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page(items, encode_cursor(items[-1].sort_ts, items[-1].id) if more else None)


def _match_text(s: Search) -> str:
    text = fts_expression(s.include, "AND")
    for p in s.exclude:
        text += f' NOT "{p}"'
    return text


def _sqlite_text(  # noqa: PLR0917
    r: _Reader,
    columns: str,
    s: Search,
    where: list[str],
    params: list[Any],
    after: tuple[float, str] | None,
    want: int,
) -> list[tuple[Any, ...]]:
    """SQLite's two plans for the words. Few matches (counted up to ``SPARSE_MAX``): read
    them from the FTS index, join their rows, sort. Many: walk the tasks newest first in
    windows and ask the index which of each window match (``_windows``)."""
    if s.include:
        match = _match_text(s)
        found = r.q(
            "SELECT count(*) FROM (SELECT 1 FROM task_search WHERE task_search MATCH ? LIMIT ?)",
            [match, SPARSE_MAX],
        )
        if int(found[0][0]) < SPARSE_MAX:
            head = (
                f"SELECT {columns} FROM (SELECT rowid AS m FROM task_search WHERE task_search MATCH ?) "
                "CROSS JOIN tasks ON tasks.rowid = m"
            )
            return _collect(r, head, where, [match, *params], after, want, "sort_ts DESC, id DESC", s.kwargs)
        return _windows(r, columns, match, False, where, params, after, want, s.kwargs)
    return _windows(r, columns, fts_expression(s.exclude, "OR"), True, where, params, after, want, ())


def _windows(  # noqa: PLR0917
    r: _Reader,
    columns: str,
    match: str,
    negate: bool,
    where: list[str],
    params: list[Any],
    after: tuple[float, str] | None,
    want: int,
    kwargs: tuple[tuple[str, str], ...],
) -> list[tuple[Any, ...]]:
    """Rows newest first whose document matches ``match`` (or, ``negate``, does not).

    Each round reads a window of candidate keys through the list's own index, then asks the
    FTS index for its matches among the window's rowids, as rowid *ranges*: rows are
    inserted about in time order, so a window's rowids form a few dense runs, and FTS5 seeks
    a range where a probe per row would restart the query each time. Windows grow 4x a
    round, so a rare match costs few rounds and a dense one a small first window.
    """
    out: list[tuple[Any, ...]] = []
    size = max(want * 4, 256)
    while len(out) < want:
        cond, cparams = _below(where, params, after)
        clause = f" WHERE {' AND '.join(cond)}" if cond else ""
        keys = r.q(
            f"SELECT rowid, sort_ts, id FROM tasks{clause} ORDER BY sort_ts DESC, id DESC LIMIT ?",
            [*cparams, size],
        )
        if not keys:
            break
        hits: set[int] = set()
        for lo, hi in _runs(sorted(k[0] for k in keys), size):
            hits.update(
                rowid
                for (rowid,) in r.q(
                    "SELECT rowid FROM task_search WHERE task_search MATCH ? AND rowid BETWEEN ? AND ?",
                    [match, lo, hi],
                )
            )
        chosen = [k[0] for k in keys if (k[0] in hits) != negate]
        for part in range(0, len(chosen), 500):
            ids = chosen[part : part + 500]
            extra = ", detail" if kwargs else ""
            rows = r.q(
                f"SELECT {columns}{extra} FROM tasks WHERE rowid IN ({','.join('?' * len(ids))}) "
                "ORDER BY sort_ts DESC, id DESC",
                ids,
            )
            out += [row[:-1] for row in rows if kwargs_match(_ids(row), row[-1], kwargs)] if kwargs else rows
        if len(keys) < size:
            break
        after = (float(keys[-1][1]), str(keys[-1][2]))
        size = min(size * 4, 65_536)
    return out[:want]


def _runs(rowids: list[int], size: int) -> list[tuple[int, int]]:
    """Sorted rowids as at most ``RUNS_MAX`` ranges, split at the widest gaps wider than the
    window: a range skips the matches in the gaps, a query more costs its start."""
    gaps = sorted(
        (rowids[i + 1] - rowids[i], i) for i in range(len(rowids) - 1) if rowids[i + 1] - rowids[i] > size
    )
    cuts = sorted(i for _, i in gaps[-(RUNS_MAX - 1) :]) if RUNS_MAX > 1 else []
    runs: list[tuple[int, int]] = []
    lo = 0
    for cut in cuts:
        runs.append((rowids[lo], rowids[cut]))
        lo = cut + 1
    runs.append((rowids[lo], rowids[-1]))
    return runs


def _below(
    where: list[str], params: list[Any], after: tuple[float, str] | None
) -> tuple[list[str], list[Any]]:
    if after is None:
        return list(where), list(params)
    # ``sort_ts <= ?`` alone bounds the index range; the OR breaks ties on id.
    return [*where, "sort_ts <= ?", "(sort_ts < ? OR (sort_ts = ? AND id < ?))"], [
        *params,
        after[0],
        after[0],
        after[0],
        after[1],
    ]


def _collect(  # noqa: PLR0917
    r: _Reader,
    head: str,
    where: list[str],
    params: list[Any],
    after: tuple[float, str] | None,
    want: int,
    order: str,
    kwargs: tuple[tuple[str, str], ...],
) -> list[tuple[Any, ...]]:
    """Up to ``want`` rows below ``after`` in ``order``; with ``kwargs``, only rows whose stored
    kwargs hold them (read ``VERIFY_CHUNK`` at a time, checked here, until enough or none left)."""
    out: list[tuple[Any, ...]] = []
    if kwargs:
        head = head.replace(" FROM ", ", detail FROM ", 1)
    chunk = max(want, VERIFY_CHUNK) if kwargs else want
    while True:
        cond, cparams = _below(where, params, after)
        clause = f" WHERE {' AND '.join(cond)}" if cond else ""
        rows = r.q(f"{head}{clause} ORDER BY {order} LIMIT ?", [*cparams, chunk])
        if not kwargs:
            return rows
        out += [row[:-1] for row in rows if kwargs_match(_ids(row), row[-1], kwargs)]
        if len(out) >= want or len(rows) < chunk:
            return out[:want]
        last = rows[-1]
        after = (float(last[-2]), str(last[0]))
