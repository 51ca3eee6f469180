"""Roll-up, stuck-task rules, and workflow identity (union-find over linked ids)."""

from __future__ import annotations

import canvas_scenarios as sc
import pytest
from canvas_factory import Recorder
from graph_helpers import fold_all

from stemtrace.core.rollup import rollup
from stemtrace.core.states import TaskState as T
from stemtrace.core.states import WorkflowState as W
from stemtrace.core.stuck import overdue_tasks, percentile, runtime_p95, unconsumed_tasks
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import UnionFind, linked_ids


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([T.SUCCESS, T.SUCCESS], W.SUCCESS),
        ([T.SUCCESS, T.PLANNED], W.RUNNING),
        ([T.FAILURE, T.STARTED], W.RUNNING),
        ([T.SUCCESS, T.FAILURE, T.SKIPPED], W.FAILURE),
        ([T.SUCCESS, T.LOST], W.FAILURE),
        ([T.REVOKED, T.SUCCESS], W.REVOKED),
        ([T.REVOKED, T.FAILURE], W.FAILURE),
        ([T.SUCCESS, T.IGNORED], W.REVOKED),  # raise Ignore(): no result, a chain stops
        ([T.SUCCESS, T.REJECTED], W.FAILURE),  # Reject(requeue=False): the work was dropped
        ([T.SUCCESS, T.SKIPPED], W.REVOKED),
        ([T.RETRY], W.RUNNING),
        ([], W.SUCCESS),
    ],
)
def test_rollup(states: list[T], expected: W) -> None:
    state, counts = rollup(states)
    assert state is expected
    assert sum(counts.values()) == len(states)
    assert set(counts) == {s.value for s in T}


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.95) is None
    assert percentile(range(1, 101), 0.95) == 95
    assert percentile([5.0], 0.95) == 5.0
    assert runtime_p95({"a": [1.0] * 5, "b": [float(i) for i in range(1, 21)]}, min_samples=10) == {"b": 19.0}


def _running(name: str = "job", queue: str = "celery") -> Recorder:
    r = Recorder()
    r.publish("client", "t", name, queue=queue)
    return r


def test_overdue_started_task() -> None:
    r = _running()
    r.receive("t", "job")
    r.start("t", "job")
    record = fold_task("t", r.events)
    started = record.started_at or 0.0
    p95 = {"job": 10_000.0}  # 10 s
    assert overdue_tasks([record], p95, now=started + 20, min_overdue_ms=0) == []
    flagged = overdue_tasks([record], p95, now=started + 31, min_overdue_ms=0)
    assert [s.task_id for s in flagged] == ["t"] and flagged[0].reason == "overdue"
    assert overdue_tasks([record], p95, now=started + 31) == []  # under the one-minute floor
    assert overdue_tasks([record], {}, now=started + 1e6) == []  # no history, no verdict


def test_pending_task_on_a_queue_nobody_consumes() -> None:
    record = fold_task("t", _running(queue="reports").events)
    assert [s.reason for s in unconsumed_tasks([record], {"celery"})] == ["unconsumed_queue"]
    assert unconsumed_tasks([record], {"celery", "reports"}) == []


def test_linked_ids_cover_group_members_and_canvas_ids() -> None:
    published = sc.nested_chord()[1]  # n2: inner header member
    assert linked_ids(published) >= {"n2", "G3", "n4", "G5", "n6"}


def test_chord_unlock_links_its_group() -> None:
    unlock = sc.chord_unlock()[0]
    assert linked_ids(unlock) >= {"u0", "G2", "b3"}


@pytest.mark.parametrize(
    "scenario", [sc.group, sc.chord, sc.nested_chord, sc.group_of_chains, sc.chord_unlock, sc.replace]
)
def test_every_canvas_is_one_workflow_despite_several_roots(scenario: object) -> None:
    assert callable(scenario)
    events = scenario()
    uf = UnionFind()
    for event in events:
        uf.add_event(event)
    task_ids = {e.task_id for e in events}
    assert len({uf.find(t) for t in task_ids if t}) == 1


def test_union_find_keeps_the_first_id_as_representative() -> None:
    uf = UnionFind()
    uf.add_linked("a", ["b"])
    uf.add_linked("c", ["d"])
    assert uf.find("c") == "c"
    uf.union("d", "b")  # a later event links the two workflows
    assert uf.find("c") == "a" and uf.find("d") == "a"
    assert uf.groups() == {"a": {"a", "b", "c", "d"}}


def test_two_independent_workflows_stay_apart() -> None:
    uf = UnionFind()
    for event in [*sc.chain(), *sc.spawner()]:
        uf.add_event(event)
    assert uf.find("a1") != uf.find("k0")
    assert len(fold_all(sc.chain())) == 3
