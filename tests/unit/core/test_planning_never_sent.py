"""Planned steps of a workflow that is over were never sent (``core.planning.settle_never_sent``)."""

from __future__ import annotations

from stemtrace.core.model import Node
from stemtrace.core.planning import NEVER_SENT, settle_never_sent, settle_planned
from stemtrace.core.rollup import summarize
from stemtrace.core.states import TaskState as T
from stemtrace.core.states import WorkflowState as W

SETTLED = 1_790_000_600.0  # 2026-09-21T14:23:20Z


def _node(task_id: str, state: T, sent_at: float | None = None, finished_at: float | None = None) -> Node:
    return Node(task_id, f"t.{task_id}", state, sent_at=sent_at, finished_at=finished_at)


def _settle(nodes: list[Node], edges: dict[tuple[str, str], str]) -> tuple[dict[str, Node], int]:
    by_id = {n.id: n for n in nodes}
    settle_planned(by_id, edges, set())
    return by_id, settle_never_sent(by_id, edges, SETTLED)


def test_the_rest_of_a_chain_whose_next_step_never_came_is_skipped_naming_the_step_before() -> None:
    got, n = _settle(
        [_node("a", T.SUCCESS, 1.0, 1_790_000_000.0), _node("b", T.PLANNED), _node("c", T.PLANNED)],
        {("a", "b"): "chain", ("b", "c"): "chain"},
    )
    assert n == 2
    for step in ("b", "c"):
        assert got[step].state is T.SKIPPED and got[step].skipped_by == "a"
        assert got[step].skipped_reason == (
            "never sent: t.a (a), before it, finished at 2026-09-21T14:13:20Z "
            "and no message for it arrived by 2026-09-21T14:23:20Z"
        )
    summary = summarize({T.SUCCESS: 1, T.SKIPPED: 2}, never_sent=n)
    assert summary.state is W.FAILURE and summary.has_failure


def test_a_chord_callback_names_the_header_member_that_finished_last_whatever_the_ids() -> None:
    for first, last in (("m1", "m2"), ("m2", "m1")):
        got, n = _settle(
            [_node(first, T.SUCCESS, 1.0, 10.0), _node(last, T.SUCCESS, 2.0, 20.0), _node("cb", T.PLANNED)],
            {(first, "cb"): "chord", (last, "cb"): "chord"},
        )
        assert n == 1 and got["cb"].skipped_by == last


def test_nothing_is_never_sent_while_a_task_runs() -> None:
    for running in (T.PENDING, T.RECEIVED, T.STARTED, T.RETRY):
        got, n = _settle(
            [_node("a", T.SUCCESS, 1.0, 2.0), _node("x", running, 1.5), _node("b", T.PLANNED)],
            {("a", "b"): "chain"},
        )
        assert n == 0 and got["b"].state is T.PLANNED


def test_steps_an_upstream_failure_skipped_keep_their_reason_and_count_not_as_never_sent() -> None:
    got, n = _settle(
        [_node("a", T.FAILURE, 1.0, 2.0), _node("b", T.PLANNED), _node("ok", T.SUCCESS, 1.0, 2.0)],
        {("a", "b"): "chain"},
    )
    assert n == 0 and got["b"].state is T.SKIPPED
    assert not (got["b"].skipped_reason or "").startswith(NEVER_SENT)


def test_group_members_a_client_never_sent_and_what_follows_them() -> None:
    # A client-launched chord whose client died after the first member: the second member
    # has no task before it, and the callback after both names the member that ran.
    got, n = _settle(
        [_node("m1", T.SUCCESS, 1.0, 5.0), _node("m2", T.PLANNED), _node("cb", T.PLANNED)],
        {("m1", "cb"): "chord", ("m2", "cb"): "chord"},
    )
    assert n == 2
    assert got["m2"].skipped_by is None
    assert got["m2"].skipped_reason == "never sent: no message for it arrived by 2026-09-21T14:23:20Z"
    assert got["cb"].skipped_by == "m1"


def test_plumbing_still_running_does_not_hold_a_workflow_open() -> None:
    # celery.chord_unlock is not the user's work: a lost one leaves the callback never sent.
    unlock = Node("u", "celery.chord_unlock", T.STARTED, plumbing=True)
    got, n = _settle(
        [_node("m", T.SUCCESS, 1.0, 2.0), unlock, _node("cb", T.PLANNED)], {("m", "cb"): "chord"}
    )
    assert n == 1 and got["cb"].state is T.SKIPPED


def test_without_never_sent_steps_the_roll_up_is_unchanged() -> None:
    assert summarize({T.SUCCESS: 2}).state is W.SUCCESS
    assert summarize({T.SUCCESS: 1, T.REVOKED: 1, T.SKIPPED: 1}).state is W.REVOKED
    assert summarize({T.SUCCESS: 1, T.PLANNED: 1}, never_sent=0).state is W.RUNNING
