"""Planned steps that will never run, and which steps sit inside a group's branch.

A step known only from an embedded canvas is ``PLANNED``. When a step upstream of
it ended without success (failed, lost, revoked, rejected, ignored), Celery will
never send it: it is ``SKIPPED``, never ``FAILURE``. Error callbacks are the
exception: they run *because* of a failure, so they are not skipped by one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from stemtrace.core.model import Node
from stemtrace.core.states import TaskState

BLOCKING = frozenset(
    {TaskState.FAILURE, TaskState.LOST, TaskState.REVOKED, TaskState.REJECTED, TaskState.IGNORED}
)
_CARRIES = frozenset({"chain", "chord", "link"})  # edges along which "will never run" travels


def settle_planned(nodes: dict[str, Node], edges: dict[tuple[str, str], str], replaced: set[str]) -> None:
    """Turn ``PLANNED`` nodes downstream of a non-successful step into ``SKIPPED`` (in place).

    ``replaced`` ids end an attempt ``IGNORED`` by design (``task.replace()``), which
    does not stop what follows them.
    """
    queue = deque(
        node_id
        for node_id, node in nodes.items()
        if node.state in BLOCKING and not (node.state is TaskState.IGNORED and node_id in replaced)
    )
    if not queue:
        return  # nothing blocks: no planned step becomes skipped
    successors: dict[str, list[str]] = {}
    for (source, target), kind in edges.items():
        if kind in _CARRIES:
            successors.setdefault(source, []).append(target)
    while queue:
        current = queue.popleft()
        for target in successors.get(current, ()):
            node = nodes[target]
            if node.state is TaskState.PLANNED:
                nodes[target] = replace(node, state=TaskState.SKIPPED)
                queue.append(target)


def branches(
    members: dict[int, list[str]],
    in_edges: dict[str, list[str]],
    out_degree: dict[str, int],
) -> tuple[tuple[str, ...], ...]:
    """Every task inside each branch of a group, branches in ``group_index`` order.

    Only a branch's last task carries the group id (a group of chains, a chord in
    a group); the steps before it belong to the branch when they lead nowhere else.
    A step that fans out (the task before a ``chain -> group``) is outside.
    """
    claimed = {t for ids in members.values() for t in ids}
    out: list[tuple[str, ...]] = []
    for index in sorted(members):
        order: list[str] = []
        for member in members[index]:
            if member in in_edges:
                _collect(member, in_edges, out_degree, claimed, order)
            else:
                order.append(member)  # nothing runs before it: most members of a big group
        out.append(tuple(order))
    return tuple(out)


def _collect(
    start: str,
    in_edges: dict[str, list[str]],
    out_degree: dict[str, int],
    claimed: set[str],
    order: list[str],
) -> None:
    """Post-order walk up the in-edges from ``start``: ancestors before descendants."""
    stack: list[tuple[str, bool]] = [(start, False)]
    visited = {start}
    while stack:
        current, expanded = stack.pop()
        if expanded:
            order.append(current)
            continue
        stack.append((current, True))
        for pred in reversed(in_edges.get(current, ())):
            if pred in visited or pred in claimed or out_degree.get(pred, 0) != 1:
                continue
            visited.add(pred)
            claimed.add(pred)
            stack.append((pred, False))
