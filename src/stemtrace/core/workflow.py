"""Build a workflow's graph from its task records.

Three sources of truth, in this order: the designed structure the messages embed
(chain steps, chord callbacks, planned steps; :mod:`stemtrace.core.design`), group
membership by ``group_index``, and the runtime ``parent_id`` for what no design
mentions (tasks spawned in a body, link callbacks applied with fresh ids, the
steps of a ``task.replace()``). The result does not depend on record order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stemtrace.core.canvas import canvas_ids, parse_canvas
from stemtrace.core.design import STRUCTURAL_KINDS, Design, PlannedTask
from stemtrace.core.identity import UnionFind, chord_unlock_ids, linked_ids
from stemtrace.core.model import Attempt, AttemptSpan, Container, Edge, GraphRecord, Node, WorkflowGraph
from stemtrace.core.planning import NEVER_SENT, NOT_NEEDED, branches, settle_never_sent, settle_planned
from stemtrace.core.rollup import is_plumbing, is_scheduled, root_order, scheduled_for, summarize
from stemtrace.core.states import TaskState, WorkflowState

__all__ = ["Structure", "UnionFind", "build_workflow", "linked_ids", "structure", "structure_ids"]


def _node(record: GraphRecord) -> Node:
    attempts = record.attempts
    # Positional, in Node's field order: this runs once per task of a 10,000-task graph,
    # and keyword matching costs a third of the call.
    return Node(
        record.id,
        record.name,
        record.state,
        len(attempts),
        record.worker,
        record.queue,
        record.sent_at,
        record.received_at,
        record.started_at,
        record.finished_at,
        record.runtime_ms,
        record.exception_type,
        record.parent_id,
        record.group_id,
        record.group_index,
        is_plumbing(record.name),
        _spans(attempts) if len(attempts) > 1 else None,
        None,
        None,
        None,
        record.eta_at,
    )


def _spans(attempts: Sequence[Attempt]) -> tuple[AttemptSpan, ...] | None:
    """Each attempt's span, oldest first; ``None`` when no attempt has a time (nothing to draw)."""
    if all(a.received_at is None and a.started_at is None and a.finished_at is None for a in attempts):
        return None
    return tuple(
        AttemptSpan(a.number, a.state, a.worker, a.received_at, a.started_at, a.finished_at) for a in attempts
    )


def _planned(task: PlannedTask) -> Node:
    return Node(
        id=task.id,
        name=task.name,
        state=TaskState.PLANNED,
        group_id=task.group_id,
        group_index=task.group_index,
    )


def _replaces(child: GraphRecord, parent: GraphRecord, design: Design) -> bool:
    """``child`` is the first step of the canvas ``parent`` was replaced by.

    ``task.replace()`` bumps ``replaced_task_nesting`` and reuses the replaced id
    for the *last* step, so the child's own future names the parent.
    """
    if child.replaced_task_nesting <= 0:
        return False
    if parent.replaced_task_nesting >= child.replaced_task_nesting:
        return True
    return any(target == parent.id for (source, target) in design.edges if source == child.id)


def _runtime_edges(
    records: dict[str, GraphRecord], design: Design, has_design_in: set[str]
) -> dict[str, str]:
    """Edges from ``parent_id`` for tasks no design mentions: ``{child: kind}``."""
    out: dict[str, str] = {}
    names: dict[str, tuple[set[str], set[str]]] = {}  # callback names per parent, asked once
    for record in records.values():
        parent_id = record.parent_id
        if not parent_id or parent_id == record.id or parent_id not in records:
            continue  # a root task's retry names itself as parent
        parent = records[parent_id]
        if is_plumbing(parent.name):
            out[record.id] = "plumbing"
            continue
        if record.id in has_design_in:
            continue  # chain successor or chord callback: its parent is runtime noise
        if _replaces(record, parent, design):
            out[record.id] = "replace"
            continue
        known = names.get(parent_id)
        if known is None:
            known = names[parent_id] = design.callback_names(parent_id)
        links, errbacks = known
        if record.name in links:
            out[record.id] = "link"
        elif record.name in errbacks:
            out[record.id] = "errback"
        else:
            out[record.id] = "spawn"
    return out


def _drop_replace_cycles(edges: dict[tuple[str, str], str]) -> None:
    """The replaced id runs again as the replacement's last step; keep the graph acyclic.

    Celery publishes ``X -> first step -> ... -> X``; the replace edge already shows
    the link, so the designed edges *back into* ``X`` from its replacement go.
    """
    replaces = [key for key, kind in edges.items() if kind == "replace"]
    if not replaces:
        return
    out_edges: dict[str, list[str]] = {}
    for source, target in edges:
        out_edges.setdefault(source, []).append(target)
    for replaced, first in replaces:
        seen, stack = {first}, [first]
        while stack:
            current = stack.pop()
            for target in out_edges.get(current, ()):
                if target == replaced:
                    edges.pop((current, target), None)
                elif target not in seen:
                    seen.add(target)
                    stack.append(target)


def build_workflow(
    workflow_id: str,
    records: Sequence[GraphRecord],
    *,
    show_plumbing: bool = False,
    settled_at: float | None = None,
) -> WorkflowGraph:
    """The full graph of one workflow: every task, planned and skipped steps included.

    ``settled_at``: when the server found the workflow over (every task final, nothing new
    for ``--never-sent-after``; the store's ``workflows.settled_at``): a step still
    ``PLANNED`` then was never sent and is drawn ``SKIPPED`` (``planning.settle_never_sent``).
    """
    by_id = {r.id: r for r in sorted(records, key=lambda r: r.id)}
    design = Design()
    for record in by_id.values():
        design.add_record(record)
    design.members()
    plumbing = {i for i, r in by_id.items() if is_plumbing(r.name)}
    for unlock in sorted(plumbing):
        for group_id in chord_unlock_ids(by_id[unlock].args):
            if group_id in design.groups:
                design.group(group_id).chord = True

    nodes: dict[str, Node] = {i: _node(r) for i, r in by_id.items()}
    for task_id, task in design.planned.items():
        if task_id not in nodes:
            nodes[task_id] = _planned(task)

    edges = {k: kind for k, kind in design.edges.items() if k[0] in nodes and k[1] in nodes}
    has_design_in = {target for (_, target) in edges}
    for child, kind in _runtime_edges(by_id, design, has_design_in).items():
        parent = by_id[child].parent_id
        assert parent is not None
        if kind == "plumbing":
            if show_plumbing:
                edges.setdefault((parent, child), "spawn")
        else:
            edges.setdefault((parent, child), kind)
    _drop_replace_cycles(edges)

    if not show_plumbing:
        for unlock in plumbing:
            nodes.pop(unlock, None)
        edges = {k: v for k, v in edges.items() if k[0] not in plumbing and k[1] not in plumbing}

    replaced = {source for (source, _), kind in edges.items() if kind == "replace"}
    settle_planned(nodes, edges, replaced)
    never_sent = settle_never_sent(nodes, edges, settled_at) if settled_at is not None else 0

    containers = _containers(design, nodes, edges)
    real = [n for n in nodes.values() if not n.plumbing]
    summary = summarize(Counter(n.state for n in real), never_sent, sum(1 for n in real if _not_needed(n)))
    state = summary.state
    etas = [n.eta for n in real if n.eta is not None and is_scheduled(n.state, n.eta)]
    due = scheduled_for(summary.counts, len(etas), min(etas) if etas else None)
    starts = [t for n in real if (t := n.sent_at if n.sent_at is not None else n.started_at) is not None]
    ends = [n.finished_at for n in real if n.finished_at is not None]
    targets = {target for (_, target) in edges}
    ordered = sorted(nodes.values(), key=_node_order)
    root = next((n for n in ordered if n.id not in targets and not n.plumbing), None)
    return WorkflowGraph(
        id=workflow_id,
        state=state,
        task_count=summary.task_count,
        counts=summary.counts,
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if ends and state is not WorkflowState.RUNNING else None,
        root_id=root.id if root else None,
        name=root.name if root else None,
        nodes=tuple(ordered),
        edges=tuple(Edge(s, t, k) for (s, t), k in sorted(edges.items())),
        groups=containers,
        scheduled_for=due,
    )


def _node_order(node: Node) -> tuple[bool, float, str]:
    # Sent tasks first, in send order; planned steps after them.
    return root_order(node.sent_at, node.started_at, node.id)


def _containers(
    design: Design, nodes: dict[str, Node], edges: dict[tuple[str, str], str]
) -> tuple[Container, ...]:
    in_edges: dict[str, list[str]] = {}
    out_degree: dict[str, int] = {}
    for (source, target), kind in edges.items():
        if kind in STRUCTURAL_KINDS:
            in_edges.setdefault(target, []).append(source)
            out_degree[source] = out_degree.get(source, 0) + 1

    def by_index(node_id: str) -> tuple[bool, int, str]:
        # Parallel predecessors (a nested chord's header) in group_index order, not
        # by id: ids are random uuids.
        index = nodes[node_id].group_index if node_id in nodes else None
        return (index is None, index or 0, node_id)

    for preds in in_edges.values():
        if len(preds) > 1:
            preds.sort(key=by_index)
    out: list[Container] = []
    for group_id in sorted(design.groups):
        info = design.groups[group_id]
        members: dict[int, list[str]] = {}
        for i, ids in info.members.items():
            if len(ids) == 1:  # the usual case, 10,000 times on a big group: no sort needed
                (only,) = ids
                if only in nodes:
                    members[i] = [only]
            else:
                present = sorted(t for t in ids if t in nodes)
                if present:
                    members[i] = present
        if not members:
            continue
        per_index = branches(members, in_edges, out_degree)
        flat = tuple(t for branch in per_index for t in branch)
        callback = info.callback if info.callback in nodes else None
        kind = "chord" if info.chord else "group"
        out.append(Container(group_id, kind, flat, callback, per_index))
    return tuple(out)


# -- the designed part of a workflow, for its summary ---------------------------------------


@dataclass(frozen=True, slots=True)
class Structure:
    """What a workflow's summary needs beyond per-state task counts (``server.store``).

    ``planned``: the steps no task record stands for (``PLANNED``, or ``SKIPPED`` with
    the reason), exactly as ``build_workflow`` draws them. ``targets``: the ids a
    designed step or a parent leads to, which therefore are not the workflow's root.
    ``never_sent``: how many of ``planned`` were never sent (``settled_at`` given).
    """

    planned: tuple[Node, ...]
    targets: frozenset[str]
    # For the workflow's shape (``core.shape``): each chord's group id -> its callback's task
    # name; the designed chain links (step -> next step); every drawn step's task name.
    chords: Mapping[str, str | None] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str | None] = field(default_factory=dict)
    never_sent: int = 0
    not_needed: int = 0  # how many of ``planned`` are error callbacks not needed


def needs_structure(record: GraphRecord) -> bool:
    """Whether ``structure`` must see this record: it carries a canvas, or is plumbing."""
    return bool(record.canvases) or is_plumbing(record.name)


def structure_ids(record: GraphRecord) -> set[str]:
    """The ids ``record``'s canvases mention: ``structure`` must see their records too."""
    out: set[str] = set()
    for raw in record.canvases:
        out |= canvas_ids(parse_canvas(raw))
    return out


def structure(workflow_id: str, records: Sequence[GraphRecord], settled_at: float | None = None) -> Structure:
    """The planned steps and edge targets of a workflow, from part of its records.

    ``records`` must hold every record with a canvas or of plumbing (``needs_structure``)
    and every record those canvases mention (``structure_ids``); the others add no planned
    step and no designed edge, so the result is what ``build_workflow`` finds from all of
    them. ``settled_at`` is ``build_workflow``'s; the caller must have checked that every
    counted task of the workflow is final (``records`` may not hold them all).
    """
    graph = build_workflow(workflow_id, records, settled_at=settled_at)
    real = {r.id for r in records}
    planned = tuple(n for n in graph.nodes if n.id not in real)
    names = {n.id: n.name for n in graph.nodes}
    chords = {g.id: names.get(g.callback) if g.callback else None for g in graph.groups if g.kind == "chord"}
    links: dict[str, str] = {}
    for e in graph.edges:  # sorted: the first (smallest) next step wins, whatever the read order
        if e.kind == "chain":
            links.setdefault(e.source, e.target)
    never_sent = sum(1 for n in planned if n.state is TaskState.SKIPPED and _never_sent(n))
    not_needed = sum(1 for n in planned if _not_needed(n))
    targets = frozenset(e.target for e in graph.edges)
    return Structure(planned, targets, chords, links, names, never_sent, not_needed)


def _never_sent(node: Node) -> bool:
    return (node.skipped_reason or "").startswith(NEVER_SENT)


def _not_needed(node: Node) -> bool:
    return node.state is TaskState.SKIPPED and (node.skipped_reason or "").startswith(NOT_NEEDED)
