"""Plain-text renderings of API answers for the terminal commands (pure: JSON in, lines out).

Kept apart from the commands so the shapes are easy to test and the same lines serve a human at a
terminal and a coding agent reading its output.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

# A fan-out above this many members shows its failed and running members, then a count of the rest.
FANOUT_SHOWN = 12
_UNFINISHED = ("STARTED", "RETRY", "RECEIVED", "PENDING")


def when(value: str | None) -> str:
    """An API timestamp as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC, as the API gives it); ``-`` when absent."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except ValueError:
        return value


def duration(ms: float | None) -> str:
    """Milliseconds the way a person reads them: ``850 ms``, ``2.41 s``, ``3 min 05 s``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def _between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds() * 1000)


def call(name: str | None, args: Any, kwargs: Any) -> str:
    """Captured arguments as the call a developer would write: ``resize_image(4527, width=1280)``."""
    parts = (
        [_literal(a) for a in args] if isinstance(args, list) else ([] if args is None else [_literal(args)])
    )
    if isinstance(kwargs, dict):
        parts += [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    short = (name or "?").rsplit(".", 1)[-1]
    return f"{short}({', '.join(parts)})"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def task_table(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per task: state, name, full id (to paste into ``stemtrace show``), start, runtime, worker."""
    rows = [
        (
            str(t.get("state")),
            str(t.get("name") or "?"),
            str(t.get("id")),
            when(t.get("started_at") or t.get("sent_at")),
            duration(t.get("runtime_ms")),
            str(t.get("worker") or "-"),
        )
        for t in items
    ]
    header = ("STATE", "NAME", "ID", "STARTED (UTC)", "RUNTIME", "WORKER")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in [header, *rows]]


def task_detail(task: Mapping[str, Any], graph: Mapping[str, Any] | None) -> list[str]:
    """What ``stemtrace show`` prints: the task, its attempts, its traceback, its place in the workflow."""
    lines = [f"{task.get('name') or '?'}  {task.get('state')}", f"  id          {task.get('id')}"]
    for label, key in (("workflow", "workflow_id"), ("parent", "parent_id"), ("queue", "queue")):
        if task.get(key):
            lines.append(f"  {label:<11} {task[key]}")
    if task.get("routing_key") and task.get("routing_key") != task.get("queue"):
        lines.append(f"  routing key {task['routing_key']}")
    if task.get("worker"):
        lines.append(f"  worker      {task['worker']}")
    if task.get("eta"):
        lines.append(f"  scheduled   {task['eta']}")
    if task.get("args") is not None or task.get("kwargs") is not None:
        lines.append(f"  call        {call(task.get('name'), task.get('args'), task.get('kwargs'))}")
    if task.get("result") is not None:
        lines.append(f"  result      {_literal(task['result'])}")
    if task.get("exception"):
        cut = " (truncated)" if task.get("exception_truncated") else ""
        lines.append(f"  exception   {task.get('exception_type') or ''}: {task['exception']}{cut}")
    attempts = task.get("attempts") or []
    if attempts:
        lines.append("attempts:")
        for a in attempts:
            lines.append("  " + attempt_line(a, sent_at=task.get("sent_at")))
    failed = [a for a in attempts if a.get("traceback")]
    if failed:
        last = failed[-1]
        cut = " (truncated: head and innermost frames kept)" if last.get("traceback_truncated") else ""
        lines.append(f"traceback (attempt {last.get('number')}){cut}:")
        lines.extend("  " + line for line in str(last["traceback"]).splitlines())
    if graph is not None:
        lines.append("in the workflow:")
        lines.extend("  " + line for line in position(graph, str(task.get("id"))))
    return lines


def attempt_line(a: Mapping[str, Any], sent_at: str | None) -> str:
    """One attempt with the three waits: queued (sent → received), reserved (received → started), run."""
    queued = _between(sent_at, a.get("received_at")) if a.get("number") in (1, None) else None
    reserved = _between(a.get("received_at"), a.get("started_at"))
    ran = a.get("runtime_ms")
    if ran is None:
        ran = _between(a.get("started_at"), a.get("finished_at"))
    parts = [f"#{a.get('number')} {a.get('state')}", f"worker {a.get('worker') or '-'}"]
    waits = []
    if queued is not None:
        waits.append(f"queued {duration(queued)}")
    if reserved is not None:
        waits.append(f"reserved {duration(reserved)}")
    if ran is not None:
        waits.append(f"ran {duration(ran)}")
    if waits:
        parts.append(" · ".join(waits))
    if a.get("exception_type"):
        first_line = (a.get("exception") or "").splitlines()[:1]
        parts.append(f"{a['exception_type']}: {first_line[0][:120] if first_line else ''}")
    if a.get("lost_reason"):
        parts.append(f"lost: {a['lost_reason']}")
    return "  ".join(parts)


def position(graph: Mapping[str, Any], task_id: str) -> list[str]:
    """Where a task sits: what led to it, which group it belongs to, what it led to."""
    names = {n["id"]: n.get("name") or "?" for n in graph.get("nodes", [])}
    lines = [f"workflow {graph.get('id')}  {graph.get('state')}  ({_tasks(graph)})"]
    for e in graph.get("edges", []):
        if e["target"] == task_id:
            lines.append(f"after  {names.get(e['source'], '?')} {e['source']} ({e['kind']})")
    for g in graph.get("groups", []):
        if task_id in g["members"]:
            index = g["members"].index(task_id) + 1
            lines.append(f"member {index} of {len(g['members'])} of {g['kind']} {g['id']}")
        if g.get("callback") == task_id:
            lines.append(f"callback of {g['kind']} {g['id']} ({len(g['members'])} members)")
    for e in graph.get("edges", []):
        if e["source"] == task_id:
            lines.append(f"before {names.get(e['target'], '?')} {e['target']} ({e['kind']})")
    return lines


def workflow_tree(graph: Mapping[str, Any]) -> list[str]:
    """The canvas as an indented tree with states, outermost structure first.

    A chain's next step follows on the same level after ``→``; a group or chord lists each branch
    after ``•`` (a nested chord inside its parent) and its callback after ``then``; spawned,
    linked and errback tasks are indented under the task that caused them.
    """
    nodes = {n["id"]: n for n in graph.get("nodes", [])}
    groups = sorted(graph.get("groups", []), key=lambda g: -len(g["members"]))  # outermost first
    callbacks = {g["callback"] for g in groups if g.get("callback")}
    out_edges: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    incoming: Counter[str] = Counter()
    for e in graph.get("edges", []):
        if e["source"] in nodes and e["target"] in nodes:
            out_edges[e["source"]].append(e)
            incoming[e["target"]] += 1
    lines = [f"{graph.get('name') or '?'}  {graph.get('state')}  ({_tasks(graph)})  {graph.get('id')}"]
    done: set[str] = set()
    shown: set[str] = set()

    def label(node_id: str) -> str:
        n = nodes[node_id]
        extra = f"  {n['exception_type']}" if n.get("exception_type") else ""
        runtime = f"  {duration(n['runtime_ms'])}" if n.get("runtime_ms") is not None else ""
        plumbing = "  (plumbing)" if n.get("plumbing") else ""
        return f"{n.get('name') or '?'}  {n.get('state')}  {node_id}{runtime}{extra}{plumbing}"

    def visit(node_id: str, depth: int, marker: str, inside: frozenset[str]) -> None:
        if node_id in done:
            return
        group = next((g for g in groups if g["id"] not in shown and node_id in g["members"]), None)
        if group is not None:
            show_group(group, depth, marker, inside)
            return
        done.add(node_id)
        lines.append("  " * depth + marker + label(node_id))
        follow(node_id, depth, inside)

    def follow(node_id: str, depth: int, inside: frozenset[str]) -> None:
        for e in out_edges.get(node_id, []):
            target = e["target"]
            if target in callbacks and target not in inside:
                continue  # a callback is drawn once, under its group, after ``then``
            if e["kind"] == "chain":
                visit(target, depth, "→ ", inside)
            else:
                visit(target, depth + 1, f"[{e['kind']}] ", inside)

    def show_group(group: Mapping[str, Any], depth: int, marker: str, inside: frozenset[str]) -> None:
        shown.add(group["id"])
        members = [m for m in group["members"] if m in nodes]
        counts = Counter(str(nodes[m].get("state")) for m in members)
        summary = ", ".join(f"{n} {s}" for s, n in counts.most_common())
        lines.append("  " * depth + marker + f"{group['kind']} x{len(members)}  ({summary})  {group['id']}")
        member_set = set(members)
        heads = [
            m for m in members if not any(e["target"] == m for s in members for e in out_edges.get(s, []))
        ]
        heads = heads or members
        if len(members) > FANOUT_SHOWN:
            rank = {"FAILURE": 0, "LOST": 0, "REVOKED": 1, "REJECTED": 1}
            heads = sorted(
                heads,
                key=lambda m: rank.get(
                    str(nodes[m].get("state")), 2 + (nodes[m].get("state") not in _UNFINISHED)
                ),
            )
        for head in heads[:FANOUT_SHOWN]:
            visit(head, depth + 1, "• ", inside)
        left = member_set - done
        if len(heads) > FANOUT_SHOWN and left:
            lines.append("  " * (depth + 1) + f"… {len(left)} more members")
            done.update(left)
        callback = group.get("callback")
        if callback and callback in nodes and callback not in done:
            done.add(callback)
            lines.append("  " * depth + "then " + label(callback))
            follow(callback, depth, inside | {callback})

    roots = sorted((n for n in nodes if incoming[n] == 0), key=lambda n: (nodes[n].get("sent_at") or "", n))
    for root in roots:
        visit(root, 1, "", frozenset())
    for node_id in nodes:  # anything a cycle or a missing edge left out is still listed
        visit(node_id, 1, "", frozenset())
    return lines


def _tasks(graph: Mapping[str, Any]) -> str:
    count = graph.get("task_count")
    return "1 task" if count == 1 else f"{count} tasks"


def tail_line(task: Mapping[str, Any]) -> str:
    stamp = when(
        task.get("finished_at") or task.get("started_at") or task.get("received_at") or task.get("sent_at")
    )
    return f"{stamp}  {task.get('state')!s:<8}  {task.get('name') or '?'}  {task.get('id')}"


def matches(task: Mapping[str, Any], states: Iterable[str], names: Iterable[str]) -> bool:
    states, names = set(states), set(names)
    return (not states or task.get("state") in states) and (not names or task.get("name") in names)
