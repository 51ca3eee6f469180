"""Planned steps that will never run, and which steps sit inside a group's branch.

A step known only from an embedded canvas is ``PLANNED``. It becomes ``SKIPPED``
(never ``FAILURE``: it did not run), with the reason and the task that decided it, when:

* a step upstream of it ended without success (failed, lost, revoked, rejected,
  ignored): Celery sends no chain step, chord callback or link callback after that;
* it is an error callback (``link_error``) of a task that succeeded.

Error callbacks are not skipped by a failure: they run *because* of one. A step whose
predecessors all succeeded stays ``PLANNED`` even when every task sent so far is final:
a client-launched chord's header is sent one member at a time, so "nothing is running"
does not mean "nothing more will be sent" (its callback is sent once the last member is).

Only time tells that such a step will never come (:func:`settle_never_sent`): the server
decides the workflow has been quiet long enough (every task final, nothing arrived for it
for ``--never-sent-after``) and passes the moment it decided, never the clock, so this
module stays pure and a graph rebuilt later draws the same thing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import datetime, timezone

from stemtrace.core.model import Node
from stemtrace.core.states import FINAL_STATES, TaskState

BLOCKING = frozenset(
    {TaskState.FAILURE, TaskState.LOST, TaskState.REVOKED, TaskState.REJECTED, TaskState.IGNORED}
)
# How a never-sent step's ``skipped_reason`` starts: the API's readers (and ``workflow.structure``)
# tell it from a step stopped by an upstream task by it.
NEVER_SENT = "never sent: "
# The reason of an error callback that did not run because its task succeeded: not needed,
# which stops nothing (``rollup.workflow_state`` does not count it as dropped work).
NOT_NEEDED = "not needed: "
_CARRIES = frozenset({"chain", "chord", "link"})  # edges along which "will never run" travels


def _send_order(node: Node) -> tuple[bool, float, str]:
    stamp = node.sent_at if node.sent_at is not None else node.started_at
    return (stamp is None, stamp or 0.0, node.id)


def _label(node: Node) -> str:
    return f"{node.name or 'task'} ({node.id})"


def settle_planned(nodes: dict[str, Node], edges: dict[tuple[str, str], str], replaced: set[str]) -> None:
    """Turn ``PLANNED`` nodes that can no longer run into ``SKIPPED`` (in place).

    ``replaced`` ids end an attempt ``IGNORED`` by design (``task.replace()``), which
    does not stop what follows them.
    """
    successors: dict[str, list[tuple[str, str]]] = {}
    errback_sources: set[str] = set()
    for (source, target), kind in edges.items():
        if kind in _CARRIES or kind == "errback":
            successors.setdefault(source, []).append((target, kind))
            if kind == "errback":
                errback_sources.add(source)
    sources = [
        node
        for node_id, node in nodes.items()
        if node_id in successors
        and (
            (node.state in BLOCKING and not (node.state is TaskState.IGNORED and node_id in replaced))
            or (node.state is TaskState.SUCCESS and node_id in errback_sources)
        )
    ]
    if not sources:
        return  # nothing stopped before a planned step: none becomes skipped
    queue: deque[str] = deque()

    def skip(target: str, reason: str, by: str) -> None:
        node = nodes[target]
        if node.state is TaskState.PLANNED:
            nodes[target] = replace(node, state=TaskState.SKIPPED, skipped_reason=reason, skipped_by=by)
            queue.append(target)

    # Sources in send order (ids are random: they only break ties), so a step downstream
    # of two stopped tasks names the same one whatever the id values.
    for node in sorted(sources, key=_send_order):
        if node.state is TaskState.SUCCESS:
            for target, kind in successors[node.id]:
                if kind == "errback":
                    reason = f"{NOT_NEEDED}it is the error callback of {_label(node)}, which succeeded"
                    skip(target, reason, node.id)
        else:
            reason = f"{_label(node)}, upstream of it, ended {node.state.value}"
            for target, kind in successors[node.id]:
                if kind in _CARRIES:
                    skip(target, reason, node.id)
    while queue:  # a skipped step's own successors never run either, for the same reason
        current = nodes[queue.popleft()]
        reason, by = current.skipped_reason or "", current.skipped_by or current.id
        for target, _kind in successors.get(current.id, ()):
            skip(target, reason, by)


def _at(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def settle_never_sent(nodes: dict[str, Node], edges: dict[tuple[str, str], str], settled_at: float) -> int:
    """Turn the ``PLANNED`` steps of a workflow that is over into ``SKIPPED`` (in place);
    returns how many.

    ``settled_at`` is when the server found the workflow quiet: every task final and no event
    for it for a while. A step still ``PLANNED`` then was never sent: the process that should
    have sent it died after its predecessor finished, a chord's callback could not be sent
    (Celery records a ``ChordError`` for it in the result backend and sends nothing), a task
    cleared ``request.chain``, or a client stopped sending a group's members. None of these
    leaves an event, so the reason names what is known: the task before it (the last of
    them to finish, the one that would have sent it) and when it finished. Nothing happens
    while any counted task is not final: the rule is about workflows that are over.
    """
    if not any(n.state is TaskState.PLANNED for n in nodes.values()):
        return 0
    if any(
        n.state not in FINAL_STATES and n.state is not TaskState.PLANNED
        for n in nodes.values()
        if not n.plumbing
    ):
        return 0
    successors: dict[str, list[str]] = {}
    predecessors: dict[str, list[str]] = {}
    for source, target in edges:
        if source in nodes and target in nodes:
            successors.setdefault(source, []).append(target)
            predecessors.setdefault(target, []).append(source)

    def decider(node_id: str) -> Node | None:
        before = [
            nodes[p]
            for p in predecessors.get(node_id, ())
            if nodes[p].state is not TaskState.PLANNED and not nodes[p].plumbing
        ]
        if not before:
            return None
        return max(before, key=lambda n: (n.finished_at or 0.0, _send_order(n)))

    planned = [n for n in nodes.values() if n.state is TaskState.PLANNED]
    heads = [(n, decider(n.id)) for n in planned]
    # Steps right after a real task first, by when that task finished (then send order: ids
    # are random); a step after several heads names the first. Then any step no real task
    # leads to (a group member a client never sent), by its place and name.
    heads.sort(
        key=lambda pair: (
            pair[1] is None,
            (pair[1].finished_at or 0.0) if pair[1] else 0.0,
            _send_order(pair[1]) if pair[1] else (True, 0.0, ""),
            pair[0].group_index if pair[0].group_index is not None else -1,
            pair[0].name or "",
            pair[0].id,
        )
    )
    settled = _at(settled_at)
    count = 0
    for head, by in heads:
        if nodes[head.id].state is not TaskState.PLANNED:
            continue  # reached from an earlier head
        if by is None and any(nodes[p].state is TaskState.PLANNED for p in predecessors.get(head.id, ())):
            continue  # after another planned step: reached from its head
        if by is not None:
            finished = (
                f"finished at {_at(by.finished_at)}"
                if by.finished_at is not None
                else f"ended {by.state.value}"
            )
            reason = (
                f"{NEVER_SENT}{_label(by)}, before it, {finished} and no message for it arrived by {settled}"
            )
        else:
            reason = f"{NEVER_SENT}no message for it arrived by {settled}"
        queue: deque[str] = deque([head.id])
        while queue:
            current = queue.popleft()
            node = nodes[current]
            if node.state is not TaskState.PLANNED:
                continue
            nodes[current] = replace(
                node, state=TaskState.SKIPPED, skipped_reason=reason, skipped_by=by.id if by else None
            )
            count += 1
            queue.extend(successors.get(current, ()))
    for node in list(nodes.values()):  # a cycle of planned steps no head reached (never in a real canvas)
        if node.state is TaskState.PLANNED:
            nodes[node.id] = replace(
                node,
                state=TaskState.SKIPPED,
                skipped_reason=f"{NEVER_SENT}no message for it arrived by {settled}",
            )
            count += 1
    return count


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
