"""The graph of a huge workflow, with its big sets of sibling tasks collapsed in the database.

A parent with 100,000 children drawn task by task is a 45 MB response that no browser
lays out, and building it holds every record in the server's memory at once. Above
``COLLAPSE_OVER`` tasks, each set of at least ``FANOUT_MIN`` siblings (the members of
one group or chord header; the children one task sent under one task name) becomes one
node carrying its size, its counts by state and a sample of member ids (failed first,
then unfinished), which the UI links to the task list filtered on the workflow.

Nothing here holds the whole workflow: the sets are found by ``GROUP BY``, the tasks
are classified page by page (a few columns each), and only the tasks drawn one by one,
plus one representative per set, are read as records and built by
``core.workflow.build_workflow`` as usual. The representative is the set's worst
member (failed, else unfinished), so what the design says after the set (a chord's
callback SKIPPED by a failed member) is what the full graph says. The workflow's state,
name and counts are its summary row's, which roll up every task the same way the page
does (``summary``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from stemtrace.core.design import EDGE_RANK
from stemtrace.core.model import Collapsed, Container, Edge, GraphRecord, Node, WorkflowGraph
from stemtrace.core.states import FAILED_STATES, FINAL_STATES, TaskState, WorkflowState
from stemtrace.core.workflow import build_workflow
from stemtrace.server.store.base import WorkflowRow
from stemtrace.server.store.read import SKELETON_COLUMNS, skeletons

COLLAPSE_OVER = 5_000  # a workflow with more tasks than this is drawn collapsed
FANOUT_MIN = 100  # the smallest set of siblings that collapses
SAMPLE_IDS = 100  # member ids a collapsed node lists
_PAGE = 5_000  # tasks classified per query
_IDS = 500  # ids bound per query
# A member of a group: ``group_index`` (the first item of ``graph``) is set. On Celery 5.6+
# a chord callback carries the header's group id with no index: not a member.
# The pattern is a bound value (``_NO_INDEX``): PostgreSQL's driver reads a bare ``%``.
_MEMBER = "CASE WHEN group_id IS NOT NULL AND graph IS NOT NULL AND graph NOT LIKE ? THEN 1 ELSE 0 END"
_NO_INDEX = "[null,%"
_CLASSIFY = f"id, parent_id, COALESCE(name, ''), group_id, state, {_MEMBER}"
_STATES = {s.value: s for s in TaskState}


class Db(Protocol):
    def q(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@dataclass(slots=True)
class _Set:
    key: str  # the collapsed node's id
    name: str
    parent_id: str | None
    group_id: str | None
    count: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    samples: tuple[list[str], list[str], list[str]] = field(default_factory=lambda: ([], [], []))

    def add(self, task_id: str, state: str) -> None:
        self.count += 1
        self.counts[state] += 1
        task_state = _STATES.get(state)
        rank = 0 if task_state in FAILED_STATES else 1 if task_state not in FINAL_STATES else 2
        if len(self.samples[rank]) < SAMPLE_IDS:
            self.samples[rank].append(task_id)

    def member_ids(self) -> tuple[str, ...]:
        return tuple([*self.samples[0], *self.samples[1], *self.samples[2]][:SAMPLE_IDS])

    @property
    def representative(self) -> str:
        return self.member_ids()[0]


class _Sets:
    """The big sibling sets of one workflow, and which set a task belongs to."""

    def __init__(self, groups: dict[str, _Set], spawned: dict[tuple[str, str], _Set]) -> None:
        self.groups = groups
        self.spawned = spawned

    def __bool__(self) -> bool:
        return bool(self.groups or self.spawned)

    def of(
        self, task_id: str, parent_id: str | None, name: str, group_id: str | None, member: int
    ) -> _Set | None:
        if member and group_id is not None:
            return self.groups.get(group_id)
        if parent_id and parent_id != task_id:
            return self.spawned.get((parent_id, name))
        return None

    def all(self) -> list[_Set]:
        return [*self.groups.values(), *self.spawned.values()]


def _find_sets(db: Db, workflow_id: str) -> _Sets:
    groups = {
        gid: _Set(f"fanout:group:{gid}", "", None, gid)
        for gid, _n in db.q(
            f"SELECT group_id, COUNT(*) FROM tasks WHERE workflow_id = ? AND {_MEMBER} = 1 "
            "GROUP BY group_id HAVING COUNT(*) >= ?",
            [workflow_id, _NO_INDEX, FANOUT_MIN],
        )
    }
    spawned = {
        (parent, name): _Set(f"fanout:spawn:{parent}:{name}", name, parent, None)
        for parent, name, _n in db.q(
            "SELECT parent_id, COALESCE(name, ''), COUNT(*) FROM tasks WHERE workflow_id = ? "
            f"AND parent_id IS NOT NULL AND parent_id <> id AND {_MEMBER} = 0 "
            "GROUP BY parent_id, COALESCE(name, '') HAVING COUNT(*) >= ?",
            [workflow_id, _NO_INDEX, FANOUT_MIN],
        )
    }
    return _Sets(groups, spawned)


def _pages(db: Db, workflow_id: str) -> Iterator[list[tuple[Any, ...]]]:
    """The workflow's tasks, classified columns only, in send order, a page at a time."""
    after: tuple[float, str] | None = None
    while True:
        if after is None:
            rows = db.q(
                f"SELECT {_CLASSIFY}, sort_ts FROM tasks WHERE workflow_id = ? ORDER BY sort_ts, id LIMIT ?",
                [_NO_INDEX, workflow_id, _PAGE],
            )
        else:
            rows = db.q(
                f"SELECT {_CLASSIFY}, sort_ts FROM tasks WHERE workflow_id = ? AND sort_ts >= ? "
                "AND (sort_ts > ? OR id > ?) ORDER BY sort_ts, id LIMIT ?",
                [_NO_INDEX, workflow_id, after[0], after[0], after[1], _PAGE],
            )
        if not rows:
            return
        yield rows
        if len(rows) < _PAGE:
            return
        after = (rows[-1][-1], rows[-1][0])


def collapsed_graph_of(db: Db, row: WorkflowRow) -> WorkflowGraph | None:
    """:func:`collapsed_graph` of a stored workflow, whose roll-up (state, counts, never-sent
    marker, scheduled time) comes from its summary row, as the Workflows list's does."""
    graph = collapsed_graph(
        db,
        row.id,
        state=WorkflowState(row.state),
        name=row.name,
        root_id=row.root_id,
        task_count=row.task_count,
        counts=dict(row.counts),
        started_at=row.started_at,
        finished_at=row.finished_at,
        settled_at=row.settled_at,
    )
    return replace(graph, scheduled_for=row.scheduled_for) if graph is not None else None


def collapsed_graph(
    db: Db,
    workflow_id: str,
    *,
    state: WorkflowState,
    name: str | None,
    root_id: str | None,
    task_count: int,
    counts: dict[str, int],
    started_at: float | None,
    finished_at: float | None,
    settled_at: float | None = None,
) -> WorkflowGraph | None:
    """The workflow's graph with its big sibling sets collapsed; ``None`` when it has none.

    ``settled_at``: the row's (never-sent steps), so the drawing agrees with the summary."""
    sets = _find_sets(db, workflow_id)
    if not sets:
        return None
    drawn: list[str] = []
    for rows in _pages(db, workflow_id):
        for tid, parent, tname, group, tstate, member, _ts in rows:
            found = sets.of(tid, parent, tname, group, member)
            if found is None:
                drawn.append(tid)
            else:
                found.add(tid, tstate)
                if not found.name:
                    found.name = tname
    members = {s.representative: s for s in sets.all() if s.count}
    records = _records(db, [*drawn, *members])
    graph = build_workflow(workflow_id, records, settled_at=settled_at)
    del records
    # Ids the graph names that are members of a set: planned steps a drawn task's canvas
    # names (they were sent: they are members), parents of drawn tasks, the root.
    present = {n.id for n in graph.nodes}
    asked = {n.id for n in graph.nodes if n.state in (TaskState.PLANNED, TaskState.SKIPPED)}
    asked |= {n.parent_id for n in graph.nodes if n.parent_id and n.parent_id not in present}
    if root_id:
        asked.add(root_id)
    into: dict[str, str] = {rep: s.key for rep, s in members.items()}
    for ids in _chunks(sorted(asked - set(into))):
        for tid, parent, tname, group, _state, member in db.q(
            f"SELECT {_CLASSIFY} FROM tasks WHERE workflow_id = ? AND id IN ({','.join('?' * len(ids))})",
            [_NO_INDEX, workflow_id, *ids],
        ):
            found = sets.of(tid, parent, tname, group, member)
            if found is not None and found.count:
                into[tid] = found.key
    hidden = sum(s.count for s in members.values())
    return WorkflowGraph(
        id=workflow_id,
        state=state,
        task_count=task_count,
        counts=counts,
        started_at=started_at,
        finished_at=finished_at,
        root_id=into.get(root_id, root_id) if root_id else graph.root_id,
        name=name,
        nodes=_nodes(graph, members, into),
        edges=_edges(graph, into),
        groups=_groups(graph, into),
        extra={"collapsed_tasks": hidden},
    )


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _IDS):
        yield ids[start : start + _IDS]


def _records(db: Db, ids: Sequence[str]) -> list[GraphRecord]:

    out: list[GraphRecord] = []
    for part in _chunks(ids):
        out += skeletons(
            db.q(f"SELECT {SKELETON_COLUMNS} FROM tasks WHERE id IN ({','.join('?' * len(part))})", part)
        )
    return out


def _nodes(graph: WorkflowGraph, members: dict[str, _Set], into: dict[str, str]) -> tuple[Node, ...]:
    out: list[Node] = []
    placed: set[str] = set()
    for node in graph.nodes:
        key = into.get(node.id)
        if key is None:
            parent = node.parent_id
            out.append(replace(node, parent_id=into.get(parent, parent) if parent else parent))
            continue
        found = members.get(node.id)
        if found is None or key in placed:
            continue  # a planned step that is a member: drawn by its set
        placed.add(key)
        out.append(
            Node(
                id=key,
                name=found.name or node.name,
                state=node.state,  # the worst member's
                attempts=found.count,
                parent_id=found.parent_id if found.parent_id else node.parent_id,
                group_id=found.group_id,
                collapsed=Collapsed(
                    count=found.count,
                    counts={s.value: found.counts.get(s.value, 0) for s in TaskState},
                    member_ids=found.member_ids(),
                    parent_id=found.parent_id,
                    group_id=found.group_id,
                ),
            )
        )
    return tuple(out)


def _edges(graph: WorkflowGraph, into: dict[str, str]) -> tuple[Edge, ...]:
    kinds: dict[tuple[str, str], str] = {}
    for edge in graph.edges:
        key = (into.get(edge.source, edge.source), into.get(edge.target, edge.target))
        if key[0] == key[1]:
            continue
        current = kinds.get(key)
        if current is None or EDGE_RANK.get(edge.kind, 0) > EDGE_RANK.get(current, 0):
            kinds[key] = edge.kind
    targets = {t for (_, t) in kinds}
    for node in graph.nodes:
        parent = node.parent_id
        # A drawn task sent by a collapsed member: the set leads to it.
        if parent and parent in into and node.id not in into and node.id not in targets:
            kinds[(into[parent], node.id)] = "spawn"
    return tuple(Edge(s, t, k) for (s, t), k in sorted(kinds.items()))


def _groups(graph: WorkflowGraph, into: dict[str, str]) -> tuple[Container, ...]:
    def mapped(ids: Sequence[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(into.get(i, i) for i in ids))

    out = []
    for group in graph.groups:
        callback = into.get(group.callback, group.callback) if group.callback else None
        out.append(
            Container(
                group.id,
                group.kind,
                mapped(group.members),
                callback,
                tuple(mapped(b) for b in group.branches),
            )
        )
    return tuple(out)
