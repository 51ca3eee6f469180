"""Golden tests: workflow graphs rebuilt from events recorded on real Celery workers.

Each ``fixtures/<scenario>__celery-<version>.json`` holds every task event stemtrace
captured while one canvas ran on a real prefork worker (``tests/golden/record.py``).
The tests fold the events, build the workflow and compare the *whole* graph with
what Celery did. The expectations are written from Celery's behaviour (docs/research/celery-internals.md
§2.3-§2.5 and the recording's own messages), never from the builder's output: each
role ("the chain's second step", "the chord callback") is found in the raw event
dicts: who the client published, which ``group_index`` a message carried, which
id the first message's canvas names, whose ``parent_id`` points where.

Pure: no broker, no worker, no network. The fixtures are committed.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stemtrace.core.events import Event, decode_event
from stemtrace.core.identity import UnionFind
from stemtrace.core.model import TaskRecord, WorkflowGraph
from stemtrace.core.states import TaskState
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_NAME = re.compile(r"^(?P<scenario>[a-z0-9_]+)__celery-(?P<version>\d+\.\d+\.\d+)\.json$")
OLDEST, NEWEST = "5.3.6", "5.7.0"

ADD, TSUM, FAIL = "t.add", "t.tsum", "t.fail"
OK, FAILED, SKIPPED, PLANNED = "SUCCESS", "FAILURE", "SKIPPED", "PLANNED"

Json = dict[str, Any]
NodeShape = tuple[str | None, str, int]  # (name, state, attempts)
# (group id, kind, members, callback, branches), as in Container
GroupShape = tuple[str, str, tuple[str, ...], str | None, tuple[tuple[str, ...], ...]]


def box(
    group_id: str, kind: str, branches: Iterable[Iterable[str]], callback: str | None = None
) -> GroupShape:
    """A container: members are the branches flattened, in group_index order."""
    per_index = tuple(tuple(branch) for branch in branches)
    return (group_id, kind, tuple(t for branch in per_index for t in branch), callback, per_index)


# -- reading a recording (raw dicts, not the code under test) ------------------
class Recording:
    """One fixture's raw event dicts, with lookups that name roles."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw: list[Json] = json.loads(path.read_text())

    def task_ids(self) -> set[str]:
        return {e["task"]["id"] for e in self.raw}

    def published(self, **match: Any) -> list[Json]:
        """``task.published`` events (in recorded order) whose data/name match."""
        out = []
        for event in self.raw:
            if event["type"] != "task.published":
                continue
            if "name" in match and event["task"]["name"] != match["name"]:
                continue
            if "proc" in match and event["src"]["proc"] != match["proc"]:
                continue
            data = event["data"]
            if all(data.get(k) == v for k, v in match.items() if k not in ("name", "proc")):
                out.append(event)
        return out

    def one(self, **match: Any) -> str:
        """The id of the only task whose publishes match (retries publish it again)."""
        ids = {str(e["task"]["id"]) for e in self.published(**match)}
        assert len(ids) == 1, f"{self.path.name}: {match} matched {len(ids)} tasks"
        return ids.pop()

    def client_sent(self) -> list[str]:
        """Ids the client (not a worker) published, in send order."""
        out: list[str] = []
        for event in self.published(proc="client"):
            if event["task"]["id"] not in out:
                out.append(event["task"]["id"])
        return out

    def canvas(self, task_id: str) -> Json:
        """The canvas summary of ``task_id``'s first published message."""
        event = next(e for e in self.published() if e["task"]["id"] == task_id)
        canvas = event["data"].get("canvas")
        assert isinstance(canvas, dict), f"{task_id} was published without a canvas"
        return canvas

    def data(self, task_id: str) -> Json:
        """The data of ``task_id``'s first published message."""
        return dict(next(e for e in self.published() if e["task"]["id"] == task_id)["data"])

    def retries_published(self, task_id: str) -> set[int]:
        return {e["data"]["retries"] for e in self.published() if e["task"]["id"] == task_id}


def _recordings() -> list[Any]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        match = _NAME.match(path.name)
        assert match, f"fixture {path.name} is not named <scenario>__celery-<x.y.z>.json"
        out.append(pytest.param(path, id=f"{match['scenario']}-{match['version']}"))
    return out


def _scenario(path: Path) -> str:
    match = _NAME.match(path.name)
    assert match
    return match["scenario"]


# -- the code under test, end to end ------------------------------------------
def fold(events: Iterable[Event]) -> list[TaskRecord]:
    by_id: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.task_id:
            by_id[event.task_id].append(event)
    return [fold_task(task_id, evs) for task_id, evs in by_id.items()]


def graph(events: Iterable[Event], *, show_plumbing: bool = False) -> WorkflowGraph:
    events = list(events)
    uf = UnionFind()
    for event in events:
        uf.add_event(event)
    workflow_ids = {uf.find(e.task_id) for e in events if e.task_id}
    assert len(workflow_ids) == 1, f"the events form {len(workflow_ids)} workflows"
    # The workflow id is whichever id the server saw first (arrival order); the graph
    # must not depend on it, so every build here uses the same one.
    return build_workflow("wf", fold(events), show_plumbing=show_plumbing)


def decode(rec: Recording) -> list[Event]:
    return [decode_event(raw) for raw in rec.raw]


# -- what Celery did, per scenario ------------------------------------------------
@dataclass
class Expected:
    nodes: dict[str, NodeShape]
    edges: set[tuple[str, str, str]]
    state: str
    root: str
    groups: set[GroupShape]
    plumbing: frozenset[str] = frozenset()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for node_id, (_, state, _) in self.nodes.items():
            if node_id not in self.plumbing:
                out[state] += 1
        return dict(out)


def shape(g: WorkflowGraph) -> Json:
    return {
        "nodes": {n.id: (n.name, n.state.value, n.attempts) for n in g.nodes},
        "edges": {(e.source, e.target, e.kind) for e in g.edges},
        "state": g.state.value,
        "root": g.root_id,
        "groups": {(c.id, c.kind, c.members, c.callback, c.branches) for c in g.groups},
        "plumbing": frozenset(n.id for n in g.nodes if n.plumbing),
    }


def expected_shape(exp: Expected) -> Json:
    return {
        "nodes": exp.nodes,
        "edges": exp.edges,
        "state": exp.state,
        "root": exp.root,
        "groups": exp.groups,
        "plumbing": exp.plumbing,
    }


def _ok(*ids: str, name: str = ADD) -> dict[str, NodeShape]:
    return dict.fromkeys(ids, (name, OK, 1))


def single(r: Recording) -> Expected:
    (task,) = r.client_sent()
    return Expected(_ok(task), set(), OK, task, set())


def chain(r: Recording) -> Expected:
    """chain(add, add, add): the head's canvas names the steps, next step first."""
    (head,) = r.client_sent()
    second, third = (s["id"] for s in r.canvas(head)["chain"])
    edges = {(head, second, "chain"), (second, third, "chain")}
    return Expected(_ok(head, second, third), edges, OK, head, set())


def chain_failing(r: Recording) -> Expected:
    """chain(add, fail, add, add): step 2 fails, steps 3 and 4 are never sent."""
    (head,) = r.client_sent()
    failing, third, fourth = (s["id"] for s in r.canvas(head)["chain"])
    assert third not in r.task_ids() and fourth not in r.task_ids(), "Celery never sends them"
    nodes = {
        **_ok(head),
        failing: (FAIL, FAILED, 1),
        third: (ADD, SKIPPED, 0),
        fourth: (ADD, SKIPPED, 0),
    }
    edges = {(head, failing, "chain"), (failing, third, "chain"), (third, fourth, "chain")}
    return Expected(nodes, edges, FAILED, head, set())


def group(r: Recording) -> Expected:
    """group(add, add) from a client: each member is its own root, one workflow."""
    first, second = r.one(group_index=0), r.one(group_index=1)
    gid = r.data(first)["group_id"]
    groups = {box(gid, "group", [[first], [second]])}
    return Expected(_ok(first, second), set(), OK, r.client_sent()[0], groups)


def _chord(r: Recording, *, failing: bool) -> Expected:
    first, second = r.one(group_index=0, proc="client"), r.one(group_index=1, proc="client")
    gid = r.data(first)["group_id"]
    body = r.canvas(first)["chord"]["id"]
    assert r.canvas(second)["chord"]["id"] == body
    nodes = {**_ok(first), **_ok(body, name=TSUM)}
    if failing:
        assert body not in r.task_ids(), "a failed header never sends the callback"
        nodes[second] = (FAIL, FAILED, 1)
        nodes[body] = (TSUM, SKIPPED, 0)
    else:
        nodes[second] = (ADD, OK, 1)
    edges = {(first, body, "chord"), (second, body, "chord")}
    groups = {box(gid, "chord", [[first], [second]], body)}
    return Expected(nodes, edges, FAILED if failing else OK, r.client_sent()[0], groups)


def chord(r: Recording) -> Expected:
    return _chord(r, failing=False)


def chord_failing_member(r: Recording) -> Expected:
    return _chord(r, failing=True)


def chain_group_upgrade(r: Recording) -> Expected:
    """chain(add, group(add, add), tsum): the group|task pair runs as a chord."""
    (head,) = r.client_sent()
    first, second = r.one(group_index=0), r.one(group_index=1)
    gid = r.data(first)["group_id"]
    body = r.one(name=TSUM)
    nodes = {**_ok(head, first, second), **_ok(body, name=TSUM)}
    edges = {
        (head, first, "chain"),
        (head, second, "chain"),
        (first, body, "chord"),
        (second, body, "chord"),
    }
    # The head fans out into the chord, so it sits before it, not inside a branch.
    groups = {box(gid, "chord", [[first], [second]], body)}
    return Expected(nodes, edges, OK, head, groups)


def group_of_chains(r: Recording) -> Expected:
    """group(chain(add, add), chain(add, add)): only the chain tails carry the group id."""
    tail0, tail1 = r.one(group_index=0), r.one(group_index=1)
    head0, head1 = r.data(tail0)["parent_id"], r.data(tail1)["parent_id"]
    assert {head0, head1} == set(r.client_sent())
    assert r.data(head0)["group_id"] is None, "heads are not members"
    gid = r.data(tail0)["group_id"]
    edges = {(head0, tail0, "chain"), (head1, tail1, "chain")}
    groups = {box(gid, "group", [[head0, tail0], [head1, tail1]])}
    return Expected(_ok(head0, tail0, head1, tail1), edges, OK, r.client_sent()[0], groups)


def chord_of_chords(r: Recording) -> Expected:
    """chord([chain(add, add), chord([add, add], tsum)], tsum): a chord nested in a chord."""
    outer_body = r.one(name=TSUM, group_index=None)
    inner_body = r.one(name=TSUM, group_index=1)
    tail = r.one(name=ADD, group_index=0, proc="child")  # the chain's tail, outer member 0
    head = r.data(tail)["parent_id"]
    outer = r.data(tail)["group_id"]
    assert r.data(inner_body)["group_id"] == outer
    inner0, inner1 = r.one(group_index=0, proc="client"), r.one(group_index=1, proc="client")
    inner = r.data(inner0)["group_id"]
    nodes = {**_ok(head, tail, inner0, inner1), **_ok(inner_body, outer_body, name=TSUM)}
    edges = {
        (head, tail, "chain"),
        (tail, outer_body, "chord"),
        (inner0, inner_body, "chord"),
        (inner1, inner_body, "chord"),
        (inner_body, outer_body, "chord"),
    }
    groups = {
        box(inner, "chord", [[inner0], [inner1]], inner_body),
        # Branch 1 is the whole inner chord: its header in group_index order, then its body.
        box(outer, "chord", [[head, tail], [inner0, inner1, inner_body]], outer_body),
    }
    return Expected(nodes, edges, OK, r.client_sent()[0], groups)


def chord_mid_chain(r: Recording) -> Expected:
    """chain(add, chord([add, add], tsum), add): the chain continues after the callback."""
    (head,) = r.client_sent()
    first, second = r.one(group_index=0), r.one(group_index=1)
    gid = r.data(first)["group_id"]
    body = r.one(name=TSUM)
    last = r.one(name=ADD, parent_id=body)
    nodes = {**_ok(head, first, second, last), **_ok(body, name=TSUM)}
    edges = {
        (head, first, "chain"),
        (head, second, "chain"),
        (first, body, "chord"),
        (second, body, "chord"),
        (body, last, "chain"),
    }
    groups = {box(gid, "chord", [[first], [second]], body)}
    return Expected(nodes, edges, OK, head, groups)


def link(r: Recording) -> Expected:
    """add.apply_async(link=add.s(10), link_error=...): the callback's id is fresh."""
    (head,) = r.client_sent()
    assert r.canvas(head)["callbacks"][0]["id"] is None
    callback = r.one(name=ADD, parent_id=head)
    return Expected(_ok(head, callback), {(head, callback, "link")}, OK, head, set())


def link_error(r: Recording) -> Expected:
    """fail.apply_async(link=..., link_error=on_error.s()): the old-style errback runs.

    Celery sends old-style (one-argument) errbacks as a *group* with the failed task
    as parent (``backend._call_task_errbacks``), so the errback is member 0 of a
    one-task group. The ``link`` callback never runs and never had an id.
    """
    (head,) = r.client_sent()
    errback = r.one(name="golden.on_error", parent_id=head)
    gid = r.data(errback)["group_id"]
    assert gid and r.data(errback)["group_index"] == 0
    nodes = {head: (FAIL, FAILED, 1), **_ok(errback, name="golden.on_error")}
    groups = {box(gid, "group", [[errback]])}
    return Expected(nodes, {(head, errback, "errback")}, FAILED, head, groups)


def retry_recovers(r: Recording) -> Expected:
    """flaky(2): two retries (same id), then success: three attempts."""
    (task,) = r.client_sent()
    assert r.retries_published(task) == {0, 1, 2}
    return Expected({task: ("t.flaky", OK, 3)}, set(), OK, task, set())


def retry_gives_up(r: Recording) -> Expected:
    """flaky(10) with max_retries=5: six attempts, the last one fails."""
    (task,) = r.client_sent()
    assert r.retries_published(task) == {0, 1, 2, 3, 4, 5}
    return Expected({task: ("t.flaky", FAILED, 6)}, set(), FAILED, task, set())


def replace(r: Recording) -> Expected:
    """chain(replacer, add): ``self.replace(add.s())`` reuses the replacer's id for an add."""
    (task,) = r.client_sent()
    (after,) = (s["id"] for s in r.canvas(task)["chain"])
    assert {e["task"]["name"] for e in r.published() if e["task"]["id"] == task} == {"t.replacer", ADD}
    # Two attempts on one id: the replacer (ended by Ignore) and the add that replaced it.
    nodes = {task: (ADD, OK, 2), **_ok(after)}
    return Expected(nodes, {(task, after, "chain")}, OK, task, set())


def replace_with_chain(r: Recording) -> Expected:
    """chain(replace_with_chain, add): replaced by chain(add#new, add#same-id), then add.

    Celery runs ``X -> first -> X(add) -> after``; the edge back into ``X`` is not
    drawn (the graph stays acyclic), ``X -replace-> first`` shows the link.
    """
    (task,) = r.client_sent()
    (after,) = (s["id"] for s in r.canvas(task)["chain"])
    # The first replacement step: a new id, sent by the replaced task's body.
    (first,) = {e["task"]["id"] for e in r.published(name=ADD, parent_id=task)} - {task, after}
    assert r.data(first)["replaced_task_nesting"] == 1
    nodes = {task: (ADD, OK, 2), **_ok(first, after)}
    edges = {(task, first, "replace"), (task, after, "chain")}
    return Expected(nodes, edges, OK, task, set())


def spawner(r: Recording) -> Expected:
    """spawner(3): a task body calling ``add.delay()`` three times."""
    (parent,) = r.client_sent()
    children = {e["task"]["id"] for e in r.published(parent_id=parent)}
    assert len(children) == 3
    nodes = {parent: ("t.spawner", OK, 1), **_ok(*children)}
    return Expected(nodes, {(parent, c, "spawn") for c in children}, OK, parent, set())


def chord_unlock(r: Recording, *, show_plumbing: bool = False) -> Expected:
    """chord([add, sleeper], tsum) on a polling backend: celery.chord_unlock sends tsum."""
    unlock = r.one(name="celery.chord_unlock", proc="client")
    first, second = r.one(group_index=0), r.one(group_index=1)
    gid = r.data(first)["group_id"]
    assert r.data(unlock)["args"][0] == gid
    body = r.canvas(first)["chord"]["id"]
    assert r.one(name=TSUM, parent_id=unlock) == body
    nodes = {**_ok(first), second: ("t.sleeper", OK, 1), body: (TSUM, OK, 1)}
    edges = {(first, body, "chord"), (second, body, "chord")}
    plumbing: frozenset[str] = frozenset()
    if show_plumbing:
        polls = len(r.retries_published(unlock))
        assert polls >= 2, "the slow member makes chord_unlock retry at least once"
        nodes[unlock] = ("celery.chord_unlock", OK, polls)
        edges.add((unlock, body, "spawn"))
        plumbing = frozenset({unlock})
    groups = {box(gid, "chord", [[first], [second]], body)}
    root = next(i for i in r.client_sent() if i != unlock)  # plumbing is never the root
    return Expected(nodes, edges, OK, root, groups, plumbing)


EXPECTATIONS: dict[str, Callable[[Recording], Expected]] = {
    f.__name__: f
    for f in (
        single,
        chain,
        chain_failing,
        group,
        chord,
        chord_failing_member,
        chain_group_upgrade,
        group_of_chains,
        chord_of_chords,
        chord_mid_chain,
        link,
        link_error,
        retry_recovers,
        retry_gives_up,
        replace,
        replace_with_chain,
        spawner,
        chord_unlock,
    )
}


# -- the tests ------------------------------------------------------------------
def test_every_scenario_is_recorded_on_the_oldest_and_newest_celery() -> None:
    present = {path.name for path in FIXTURES.glob("*.json")}
    missing = [
        f"{name}__celery-{version}.json"
        for name in EXPECTATIONS
        for version in (OLDEST, NEWEST)
        if f"{name}__celery-{version}.json" not in present
    ]
    assert not missing


@pytest.mark.parametrize("path", _recordings())
def test_graph_is_exactly_what_celery_did(path: Path) -> None:
    rec = Recording(path)
    expected = EXPECTATIONS[_scenario(path)](rec)
    got = graph(decode(rec))
    assert shape(got) == expected_shape(expected)
    assert {k: v for k, v in got.counts.items() if v} == expected.counts()
    assert got.task_count == len(expected.nodes)
    assert got.name == expected.nodes[expected.root][0]
    # The workflow spans its first send to the last task's outcome (plumbing excluded).
    real = [e for e in rec.raw if e["task"]["name"] != "celery.chord_unlock"]
    assert got.started_at == min(e["ts"] for e in real if e["type"] == "task.published")
    assert got.finished_at == max(e["ts"] for e in real if e["type"] in ("task.succeeded", "task.failed"))


@pytest.mark.parametrize("path", _recordings())
def test_all_tasks_and_groups_share_one_workflow(path: Path) -> None:
    rec = Recording(path)
    uf = UnionFind()
    for event in decode(rec):
        uf.add_event(event)
    ids = rec.task_ids() | {e["data"]["group_id"] for e in rec.published() if e["data"].get("group_id")}
    assert len({uf.find(i) for i in ids}) == 1
    # The first id the server sees names the workflow, and keeps naming it.
    assert uf.find(rec.raw[0]["task"]["id"]) == rec.raw[0]["task"]["id"]


@pytest.mark.parametrize("path", _recordings())
def test_graph_does_not_depend_on_order_or_duplicates(path: Path) -> None:
    events = decode(Recording(path))
    reference = graph(events)
    records = sorted(fold(events), key=lambda r: r.id)
    for seed in range(5):
        rng = random.Random(seed)
        noisy = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(noisy)
        assert sorted(fold(noisy), key=lambda r: r.id) == records, f"seed {seed}"
        assert graph(noisy) == reference, f"seed {seed}"


@pytest.mark.parametrize("path", _recordings())
def test_every_moment_of_the_run_draws_part_of_the_final_graph(path: Path) -> None:
    """Replayed in recorded order, no intermediate graph shows an edge, a node, a
    container or a SKIPPED step that the finished workflow contradicts."""
    events = decode(Recording(path))
    final = graph(events)
    final_edges = {(e.source, e.target): e.kind for e in final.edges}
    final_nodes = {n.id: n for n in final.nodes}
    final_groups = {c.id: c for c in final.groups}
    for k in range(1, len(events)):
        moment = graph(events[:k])
        for edge in moment.edges:
            assert final_edges.get((edge.source, edge.target)) == edge.kind, (k, edge)
        for node in moment.nodes:
            assert node.id in final_nodes, (k, node)
            if node.state is TaskState.SKIPPED:
                assert final_nodes[node.id].state is TaskState.SKIPPED, (k, node)
        for box_ in moment.groups:
            done = final_groups[box_.id]
            assert (box_.kind, box_.callback) == (done.kind, done.callback), (k, box_)
            assert set(box_.members) <= set(done.members), (k, box_)


@pytest.mark.parametrize("path", [p for p in _recordings() if "chord_unlock" in p.id])
def test_chord_unlock_is_shown_on_request(path: Path) -> None:
    rec = Recording(path)
    expected = chord_unlock(rec, show_plumbing=True)
    got = graph(decode(rec), show_plumbing=True)
    assert shape(got) == expected_shape(expected)
    # Plumbing never counts and is never the display root.
    assert got.task_count == len(expected.nodes) - 1
    assert {k: v for k, v in got.counts.items() if v} == {OK: 3}


@pytest.mark.parametrize("path", [p for p in _recordings() if "retry_" in p.id])
def test_retries_are_attempts_of_one_task(path: Path) -> None:
    rec = Recording(path)
    (record,) = fold(decode(rec))
    assert [record.id] == rec.client_sent()
    gives_up = "gives_up" in path.name
    states = [a.state for a in record.attempts]
    last = TaskState.FAILURE if gives_up else TaskState.SUCCESS
    assert states == [TaskState.RETRY] * (len(states) - 1) + [last]
    assert [a.number for a in record.attempts] == list(range(1, len(states) + 1))
    assert record.retries == len(states) - 1
    assert record.parent_id is None, "a root task's retry names itself as parent"
    if gives_up:
        assert record.exception_type == "builtins.ValueError"
        assert record.exception == "attempt 5 failed"


@pytest.mark.parametrize("path", [p for p in _recordings() if "replace" in p.id])
def test_replaced_id_keeps_its_name_history(path: Path) -> None:
    rec = Recording(path)
    (task,) = rec.client_sent()
    records = {r.id: r for r in fold(decode(rec))}
    first_name = rec.published(proc="client")[0]["task"]["name"]
    assert records[task].names == (first_name, ADD)
    assert [a.state for a in records[task].attempts] == [TaskState.IGNORED, TaskState.SUCCESS]
    assert records[task].replaced_task_nesting == 1


@pytest.mark.parametrize("path", [p for p in _recordings() if "failing" in p.id or "link_error" in p.id])
def test_failed_node_carries_its_exception(path: Path) -> None:
    got = graph(decode(Recording(path)))
    failed = [n for n in got.nodes if n.state is TaskState.FAILURE]
    assert len(failed) == 1
    assert failed[0].exception_type == "builtins.ValueError"
    assert failed[0].name == FAIL


# -- in flight: planned steps from the first message's canvas -------------------------
def _head_only(rec: Recording, head: str) -> list[Event]:
    """What the server has once the head task started and nothing else happened yet."""
    kept = [
        e
        for e in rec.raw
        if e["task"]["id"] == head and e["type"] in ("task.published", "task.received", "task.started")
    ]
    assert {e["type"] for e in kept} == {"task.published", "task.received", "task.started"}
    return [decode_event(e) for e in kept]


def _as_planned(exp: Expected, running: str) -> Json:
    """The full design, every task but ``running`` PLANNED (never sent yet)."""
    out = expected_shape(exp)
    out["nodes"] = {
        i: (name, "STARTED", 1) if i == running else (name, PLANNED, 0)
        for i, (name, _, _) in exp.nodes.items()
    }
    out["state"] = "RUNNING"
    return out


PLANNED_SCENARIOS = ("chain", "chain_failing", "chain_group_upgrade", "chord_mid_chain")


@pytest.mark.parametrize("path", [p for p in _recordings() if p.id.rsplit("-", 1)[0] in PLANNED_SCENARIOS])
def test_head_alone_shows_every_planned_step(path: Path) -> None:
    """A chain's first message carries the whole design: draw it before it runs."""
    rec = Recording(path)
    full = EXPECTATIONS[_scenario(path)](rec)
    (head,) = rec.client_sent()
    got = graph(_head_only(rec, head))
    assert shape(got) == _as_planned(full, head)


CLIENT_DESIGNED = (
    "group",
    "chord",
    "chord_failing_member",
    "group_of_chains",
    "chord_of_chords",
    "chord_unlock",
)


@pytest.mark.parametrize("path", [p for p in _recordings() if p.id.rsplit("-", 1)[0] in CLIENT_DESIGNED])
def test_client_messages_alone_draw_the_design(path: Path) -> None:
    """Only what the client sent: groups, chords and their callbacks, nothing ran yet."""
    rec = Recording(path)
    full = EXPECTATIONS[_scenario(path)](rec)
    sent = rec.client_sent()
    first = [
        decode_event(e) for e in rec.raw if e["type"] == "task.published" and e["src"]["proc"] == "client"
    ]
    want = expected_shape(full)
    want["nodes"] = {
        i: (name, "PENDING", 1) if i in sent else (name, PLANNED, 0) for i, (name, _, _) in full.nodes.items()
    }
    want["state"] = "RUNNING"
    assert shape(graph(first)) == want
