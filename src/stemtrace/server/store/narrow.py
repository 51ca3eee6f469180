"""Rewriting stored task rows: only the columns a batch changed.

A task's events usually arrive in two or more batches (its ``task.published`` minutes before
its ``received``/``started``/``succeeded`` when a queue has a backlog), so most task writes
of a real stream rewrite a stored row. An upsert that sets every column makes SQLite rewrite
the entry of every index on the table (it decides by the columns named in ``SET``, not by
whether their values changed): about a dozen indexes on ``tasks``. The columns a task's
later events change are few (state, times, worker, the detail), so the rows are grouped by
which columns differ from the stored row, and each group is one upsert that sets only those
(``docs/adr/0012-narrow-task-writes.md`` has the measured gain). PostgreSQL keeps its
heap-only updates for unchanged indexed columns either way; it gets the same statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stemtrace.server.store import rollups
from stemtrace.server.store.codec import chunks, marks
from stemtrace.server.store.task_row import TASK_COLUMNS, TASK_TYPES

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

_COLUMNS = tuple(c.strip() for c in TASK_COLUMNS.split(","))
_INGESTED = _COLUMNS.index("ingested_at")  # always written: it says when the row last changed
_SOURCE = _COLUMNS.index("source")


def stored_rows(w: BatchWriter, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """The stored rows of these task ids (those that have one), in ``TASK_COLUMNS`` order."""
    out: dict[str, tuple[Any, ...]] = {}
    for part in chunks(ids):
        for row in w.q(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks(len(part))})", part):
            out[row[0]] = row
    return out


def split_rows(
    rows: Iterable[Sequence[Any]], stored: Mapping[str, tuple[Any, ...]]
) -> tuple[list[Sequence[Any]], dict[tuple[int, ...], list[Sequence[Any]]]]:
    """The rows to insert whole (no stored row), and the others grouped by the columns
    (positions in ``TASK_COLUMNS``) they change; ``ingested_at`` is always among them."""
    whole: list[Sequence[Any]] = []
    changed: dict[tuple[int, ...], list[Sequence[Any]]] = {}
    width = len(_COLUMNS)
    for given in rows:
        old = stored.get(given[0])
        if old is None:
            whole.append(given)
            continue
        row = given
        if not row[_SOURCE] and old[_SOURCE]:  # rewritten without its source: keeps its own,
            row = [*row[:_SOURCE], old[_SOURCE], *row[_SOURCE + 1 :]]  # as ``write_tasks`` does
        key = tuple(i for i in range(1, width) if i == _INGESTED or row[i] != old[i])
        found = changed.get(key)
        if found is None:
            changed[key] = [row]
        else:
            found.append(row)
    return whole, changed


def write_changed(w: BatchWriter, groups: Mapping[tuple[int, ...], Sequence[Sequence[Any]]]) -> None:
    """One upsert per group that sets only the group's columns (the rows exist: the batch's
    transaction read them, and holds the store's write lock since). The roll-ups follow every
    task row write, as in ``task_row.write_tasks``: they read the stored rows first."""
    rollups.apply(w, [row for key in sorted(groups) for row in groups[key]])
    for key in sorted(groups):
        updates = ", ".join(f"{_COLUMNS[i]} = excluded.{_COLUMNS[i]}" for i in key)
        w.d.insert_rows(
            w.conn,
            f"INSERT INTO tasks ({TASK_COLUMNS})",
            TASK_TYPES,
            groups[key],
            tail=f"ON CONFLICT (id) DO UPDATE SET {updates}",
        )
