"""Which task names a workflow: its root, found as ``core.workflow.build_workflow`` finds it.

The root is the first task in send order (``core.rollup.root_order``) that no parent in the
workflow and no designed step leads to, plumbing excluded. The Workflows list's roll-up
(``summary``) needs it for every workflow a batch touches, so it reads only the first few
tasks of each workflow in one query, and all of a workflow's tasks only when those few
cannot settle it (a root later in send order than ``_CANDIDATES`` others).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from stemtrace.core.model import Node
from stemtrace.core.rollup import root_order
from stemtrace.core.workflow import Structure
from stemtrace.server.store.codec import NOT_PLUMBING, marks

_PART = 200  # workflows per statement
_CANDIDATES = 8  # root candidates read per workflow before the full scan
_NO_STRUCTURE = Structure((), frozenset())


class Db(Protocol):
    """A connection's query helper (``write.BatchWriter``, ``read.Reader``)."""

    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def parts(items: Sequence[str], size: int = _PART) -> Iterator[Sequence[str]]:
    """``items`` in slices of ``size``: one statement's worth of bound ids."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


_STAMP = "COALESCE(sent_at, started_at)"
_ORDER = f"CASE WHEN {_STAMP} IS NULL THEN 1 ELSE 0 END, {_STAMP}, id"


def find_roots(w: Db, part: Sequence[str], shapes: dict[str, Structure]) -> dict[str, tuple[str, str | None]]:
    """The root (id, name) of each workflow whose first few tasks hold it (one query for all)."""
    if not part:
        return {}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for wf, tid, name, parent, sent, started in w.q(
        "SELECT workflow_id, id, name, parent_id, sent_at, started_at FROM ("
        "SELECT workflow_id, id, name, parent_id, sent_at, started_at, "
        f"ROW_NUMBER() OVER (PARTITION BY workflow_id ORDER BY {_ORDER}) AS rn FROM tasks "
        f"WHERE workflow_id IN ({marks(len(part))}) AND {NOT_PLUMBING}) ranked WHERE rn <= ?",
        [*part, _CANDIDATES],
    ):
        rows.setdefault(wf, []).append((tid, name, parent, sent, started))
    leads = _leads(w, rows)
    out: dict[str, tuple[str, str | None]] = {}
    for wf, found in rows.items():
        root = _pick(found, shapes.get(wf, _NO_STRUCTURE), leads, complete=len(found) < _CANDIDATES, wf=wf)
        if root is not None:
            out[wf] = root
    return out


def _leads(w: Db, rows: dict[str, list[tuple[Any, ...]]]) -> set[tuple[str, str]]:
    """(parent id, workflow) of every candidate's parent that is a counted task of its workflow:
    a runtime edge into the candidate, which therefore is not the root."""
    wanted = sorted({p for found in rows.values() for (tid, _, p, _, _) in found if p and p != tid})
    out: set[tuple[str, str]] = set()
    for ids in parts(wanted, 500):
        out.update(
            (pid, wf)
            for pid, wf in w.q(
                f"SELECT id, workflow_id FROM tasks WHERE id IN ({marks(len(ids))}) AND {NOT_PLUMBING}",
                list(ids),
            )
        )
    return out


def find_root(w: Db, wf: str, shape: Structure) -> tuple[str | None, str | None]:
    """The workflow's root task (id, name), as ``build_workflow`` picks it, from all its tasks."""
    rows = w.q(
        "SELECT id, name, parent_id, sent_at, started_at FROM tasks "
        f"WHERE workflow_id = ? AND {NOT_PLUMBING} ORDER BY {_ORDER}",
        [wf],
    )
    found = _pick(rows, shape, _leads(w, {wf: rows}), complete=True, wf=wf)
    return found if found is not None else (None, None)


def _pick(
    rows: Sequence[tuple[Any, ...]],
    shape: Structure,
    leads: set[tuple[str, str]],
    *,
    complete: bool,
    wf: str,
) -> tuple[str, str | None] | None:
    """The root among the first ``rows`` (in ``_ORDER``), or ``None`` when it may lie beyond."""
    candidates: list[tuple[tuple[bool, float, str], str, str | None]] = [
        (root_order(sent, started, tid), tid, name)
        for tid, name, parent, sent, started in rows
        if tid not in shape.targets and not (parent and parent != tid and (parent, wf) in leads)
    ]
    if not complete and (not candidates or min(candidates)[0][0]):
        # Nothing qualified among the first rows, or the best has no time (rows without one
        # are ordered by id, which SQL may collate differently): look at all of them.
        return None
    candidates += [(root_order(None, None, n.id), n.id, n.name) for n in _free(shape.planned, shape.targets)]
    if not candidates:
        return None
    _, tid, name = min(candidates)
    return tid, name


def _free(planned: Sequence[Node], targets: frozenset[str]) -> list[Node]:
    return [n for n in planned if n.id not in targets]
