"""Scheduled work (ETA/countdown) in the roll-up, and a workflow named by its shape."""

from __future__ import annotations

from collections import Counter

import pytest

from stemtrace.core.model import TaskRecord, eta_seconds
from stemtrace.core.rollup import is_scheduled, scheduled_for, summarize
from stemtrace.core.shape import GroupShape, chain_steps, shape_name, short_name
from stemtrace.core.states import TaskState, WorkflowState
from stemtrace.core.workflow import build_workflow

T = 1_790_000_000.0
ETA = "2026-09-21T10:00:00+00:00"
LATER = "2026-09-21T11:00:00+00:00"


def counts(**by_state: int) -> dict[str, int]:
    return summarize({TaskState(k): n for k, n in by_state.items()}).counts


@pytest.mark.parametrize(
    ("by_state", "scheduled", "expected"),
    [
        ({"RECEIVED": 2}, 2, T),  # both wait for their ETA
        ({"RECEIVED": 1, "SUCCESS": 3}, 1, T),  # the rest is done
        ({"RECEIVED": 1, "PLANNED": 2}, 1, T),  # chain steps behind a countdown
        ({"PENDING": 1, "RETRY": 1}, 2, T),  # sent with an ETA; a retry's countdown
        ({"RECEIVED": 2}, 1, None),  # one is held without an ETA: not only scheduled
        ({"RECEIVED": 1, "STARTED": 1}, 1, None),  # something runs
        ({"PLANNED": 1}, 0, None),  # nothing scheduled
        ({"SUCCESS": 1}, 0, None),
    ],
)
def test_scheduled_for_only_when_every_unfinished_task_waits_for_its_eta(
    by_state: dict[str, int], scheduled: int, expected: float | None
) -> None:
    assert scheduled_for(counts(**by_state), scheduled, T if scheduled else None) == expected


def test_is_scheduled_needs_an_eta_and_a_waiting_state() -> None:
    assert is_scheduled(TaskState.RECEIVED, T) and is_scheduled("PENDING", T) and is_scheduled("RETRY", T)
    assert not is_scheduled(TaskState.RECEIVED, None)
    assert not is_scheduled(TaskState.STARTED, T) and not is_scheduled(TaskState.SUCCESS, T)


def test_eta_seconds_reads_celery_spellings_and_rejects_the_rest() -> None:
    assert eta_seconds("2026-09-21T10:00:00") == eta_seconds(ETA) == eta_seconds("2026-09-21T10:00:00Z")
    for bad in (None, "", "soon", 12345, "9999-12-31T23:59:59+14:00x"):
        assert eta_seconds(bad) is None
    assert TaskRecord("a", "t", TaskState.RECEIVED, eta=ETA).eta_at == eta_seconds(ETA)


def _task(tid: str, state: TaskState, eta: str | None = None, **kw: object) -> TaskRecord:
    return TaskRecord(tid, "proj.remind", state, root_id="a", eta=eta, sent_at=T, **kw)  # type: ignore[arg-type]


def test_the_page_rolls_up_scheduled_work_like_the_list() -> None:
    graph = build_workflow(
        "a",
        [
            _task("a", TaskState.SUCCESS),
            _task("b", TaskState.RECEIVED, LATER, parent_id="a"),
            _task("c", TaskState.RECEIVED, ETA, parent_id="a"),
        ],
    )
    assert graph.state is WorkflowState.RUNNING
    assert graph.scheduled_for == eta_seconds(ETA)  # the earliest ETA
    assert {n.id: n.eta for n in graph.nodes} == {"a": None, "b": eta_seconds(LATER), "c": eta_seconds(ETA)}
    expected = scheduled_for(Counter(graph.counts), 2, eta_seconds(ETA))
    assert graph.scheduled_for == expected
    # Once one starts, the workflow runs: no longer "scheduled".
    started = build_workflow(
        "a",
        [
            _task("a", TaskState.SUCCESS),
            _task("b", TaskState.STARTED, LATER),
            _task("c", TaskState.RECEIVED, ETA),
        ],
    )
    assert started.scheduled_for is None


@pytest.mark.parametrize(
    ("groups", "chain", "expected"),
    [
        (
            [GroupShape("g", {"proj.score_item": 500}, True, "proj.summarize")],
            [],
            "chord: score_item \u00d7500 → summarize",
        ),
        ([GroupShape("g", {"a.add": 2, "a.fail": 1}, True, None)], [], "chord: 3 tasks → callback"),
        ([GroupShape("g", {"img.resize": 1200})], [], "group: resize \u00d71,200"),
        # The largest group stands for the workflow, ties to the smallest id.
        (
            [
                GroupShape("z", {"t.b": 3}),
                GroupShape("a", {"t.a": 3}),
                GroupShape("m", {"t.c": 2}, True, "t.d"),
            ],
            ["t.x", "t.y"],
            "group: a \u00d73",
        ),
        ([GroupShape("g", {"t.on_error": 1})], ["t.x"], None),  # Celery's errback group of one
        ([], ["p.fetch", "p.parse", "p.store"], "chain: fetch → parse → store"),
        ([], ["a", "b", "c", "d", "e"], "chain: a → b → c → … (5 steps)"),
        ([], ["a.b.c", None, "d"], "chain: c → ? → d"),
        ([], ["t.single"], None),
        ([], [], None),
    ],
)
def test_shape_name(groups: list[GroupShape], chain: list[str | None], expected: str | None) -> None:
    assert shape_name(groups, chain) == expected


def test_chain_steps_follow_links_and_stop_on_a_cycle() -> None:
    assert chain_steps("a", {"a": "b", "b": "c"}) == ["a", "b", "c"]
    assert chain_steps("a", {"a": "b", "b": "a"}) == ["a", "b"]
    assert chain_steps(None, {"a": "b"}) == []
    assert (short_name("proj.tasks.resize"), short_name("plain"), short_name("odd."), short_name(None)) == (
        "resize",
        "plain",
        "odd.",
        "?",
    )
