"""A workflow named by its shape: "chord: score_item x500 → summarize".

The root task's name says little about a canvas (a chord's first header task, or the
first link of a chain), so the Workflows list and the workflow page both show this name,
computed once with the workflow's summary (``server.store.summary``) from what the
roll-up already reads: the members of each group by task name, which groups are chords
and their callback's name, and the chain links from the root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TIMES = "\u00d7"  # the multiplication sign: "score_item \u00d7500"
CHAIN_SHOWN = 3  # a longer chain shows its first steps and how many there are


@dataclass(frozen=True, slots=True)
class GroupShape:
    """One group or chord header: its direct members (``group_index`` set) by task name."""

    id: str
    members: Mapping[str, int]  # task name ("" when unknown) -> how many members have it
    chord: bool = False
    callback: str | None = None  # the chord callback's task name, when known


def short_name(name: str | None) -> str:
    """``proj.tasks.resize_image`` -> ``resize_image`` (the UI's ``shortTaskName``)."""
    if not name:
        return "?"
    head, _, tail = name.rpartition(".")
    return tail if head and tail else name


def _header(group: GroupShape) -> str:
    total = sum(group.members.values())
    names = [n for n, count in group.members.items() if count > 0]
    if len(names) == 1:
        return f"{short_name(names[0])} {TIMES}{total:,}"
    return f"{total:,} tasks"


def chain_steps(root_id: str | None, links: Mapping[str, str]) -> list[str]:
    """The ids of the chain that starts at ``root_id``, following ``links`` (step -> next)."""
    steps: list[str] = []
    seen: set[str] = set()
    current = root_id
    while current is not None and current not in seen:
        seen.add(current)
        steps.append(current)
        current = links.get(current)
    return steps


def shape_name(groups: Sequence[GroupShape], chain: Sequence[str | None]) -> str | None:
    """The shape of a workflow, or ``None`` when it has none (a lone task, a plain tree).

    The largest group or chord header stands for the workflow (a nested one is a part of
    it; ties go to the smallest id, so the name never depends on read order): "chord:
    score_item x500 → summarize" or "group: resize x20", "1,200 tasks" when the members
    have several names. Without a group, a chain of two or more steps from the root
    (``chain``: their task names in order): "chain: fetch → parse → store", a longer one
    "chain: a → b → c → … (7 steps)".
    """
    sized = [(sum(g.members.values()), g) for g in groups]
    # A group needs two members to be the shape: Celery runs a link_error callback as a group of one.
    sized = [(n, g) for n, g in sized if n > 1 or (n == 1 and g.chord)]
    if sized:
        _, top = min(sized, key=lambda item: (-item[0], item[1].id))
        if top.chord:
            return f"chord: {_header(top)} → {short_name(top.callback) if top.callback else 'callback'}"
        return f"group: {_header(top)}"
    if len(chain) > 1:
        names = [short_name(n) for n in chain]
        if len(names) > CHAIN_SHOWN + 1:
            return f"chain: {' → '.join(names[:CHAIN_SHOWN])} → … ({len(names)} steps)"
        return f"chain: {' → '.join(names)}"
    return None
