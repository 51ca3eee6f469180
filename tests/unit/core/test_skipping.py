"""Which planned steps can no longer run, and why (``core.planning.settle_planned``)."""

from __future__ import annotations

import pytest
from canvas_factory import Recorder, canvas, sig
from graph_helpers import fold_all

from stemtrace.core.model import Node
from stemtrace.core.planning import settle_planned
from stemtrace.core.rollup import summarize
from stemtrace.core.states import TaskState as T
from stemtrace.core.states import WorkflowState as W
from stemtrace.core.workflow import build_workflow, structure


def _node(task_id: str, state: T, sent_at: float | None = None) -> Node:
    return Node(task_id, f"t.{task_id}", state, sent_at=sent_at)


def _settle(nodes: list[Node], edges: dict[tuple[str, str], str]) -> dict[str, Node]:
    by_id = {n.id: n for n in nodes}
    settle_planned(by_id, edges, set())
    return by_id


@pytest.mark.parametrize("stopped", [T.FAILURE, T.LOST, T.REVOKED, T.REJECTED, T.IGNORED])
def test_chain_steps_after_a_stopped_task_are_skipped_naming_it(stopped: T) -> None:
    got = _settle(
        [_node("a", T.SUCCESS, 1.0), _node("b", stopped, 2.0), _node("c", T.PLANNED), _node("d", T.PLANNED)],
        {("a", "b"): "chain", ("b", "c"): "chain", ("c", "d"): "chain"},
    )
    for step in ("c", "d"):
        assert got[step].state is T.SKIPPED
        assert got[step].skipped_by == "b"
        assert got[step].skipped_reason == f"t.b (b), upstream of it, ended {stopped.value}"
    assert summarize({n.state: 1 for n in got.values()}).state is not W.SUCCESS


def test_an_error_callback_of_a_success_is_skipped_and_of_a_failure_still_planned() -> None:
    got = _settle(
        [
            _node("ok", T.SUCCESS, 1.0),
            _node("bad", T.FAILURE, 2.0),
            _node("e1", T.PLANNED),
            _node("e2", T.PLANNED),
        ],
        {("ok", "e1"): "errback", ("bad", "e2"): "errback"},
    )
    assert got["e1"].state is T.SKIPPED and got["e1"].skipped_by == "ok"
    assert "error callback" in (got["e1"].skipped_reason or "")
    assert got["e2"].state is T.PLANNED  # it runs because of the failure: not skipped by it


def test_a_link_callback_of_a_failure_is_skipped() -> None:
    got = _settle([_node("bad", T.FAILURE, 1.0), _node("cb", T.PLANNED)], {("bad", "cb"): "link"})
    assert got["cb"].state is T.SKIPPED and got["cb"].skipped_by == "bad"


def test_a_step_after_two_stopped_tasks_names_the_first_sent_whatever_the_ids() -> None:
    # A chord callback after two failed header members: the earlier-sent one decides.
    for first, second in (("m1", "m2"), ("m2", "m1")):
        got = _settle(
            [_node(first, T.FAILURE, 1.0), _node(second, T.REVOKED, 2.0), _node("body", T.PLANNED)],
            {(first, "body"): "chord", (second, "body"): "chord"},
        )
        assert got["body"].skipped_by == first


def test_steps_after_successes_stay_planned() -> None:
    # Every sent task is final and succeeded, but the next step may still be on its way
    # (a client-launched chord sends its header one member at a time).
    got = _settle([_node("a", T.SUCCESS, 1.0), _node("b", T.PLANNED)], {("a", "b"): "chord"})
    assert got["b"].state is T.PLANNED
    assert summarize({T.SUCCESS: 1, T.PLANNED: 1}).state is W.RUNNING


def test_a_workflow_whose_error_callback_was_not_needed_succeeded() -> None:
    # A task with a link_error whose errback carries an id (a frozen signature) succeeded:
    # the errback is drawn SKIPPED (not needed), and the workflow did all its work.
    got = _settle([_node("ok", T.SUCCESS, 1.0), _node("e", T.PLANNED)], {("ok", "e"): "errback"})
    assert got["e"].state is T.SKIPPED
    counts = {T.SUCCESS: 1, T.SKIPPED: 1}
    assert summarize(counts, not_needed=1).state is W.SUCCESS
    # Any other skipped step is still work that did not run.
    assert summarize({T.SUCCESS: 1, T.SKIPPED: 2}, not_needed=1).state is W.REVOKED
    assert summarize({T.FAILURE: 1, T.SKIPPED: 1}, not_needed=1).state is W.FAILURE


def test_the_page_and_the_list_roll_up_a_success_with_an_unneeded_errback_as_success() -> None:
    r = Recorder()
    r.publish("client", "l0", canvas=canvas(errbacks=[sig("eb", "errh")]))  # a frozen errback: it has an id
    r.run("l0")
    records = fold_all(r.events)
    graph = build_workflow("l0", records)
    nodes = {n.id: n for n in graph.nodes}
    assert nodes["eb"].state is T.SKIPPED and "succeeded" in (nodes["eb"].skipped_reason or "")
    assert graph.state is W.SUCCESS
    # The Workflows list's row is summarized from the same structure.
    found = structure("l0", records)
    assert found.not_needed == 1
    assert summarize({T.SUCCESS: 1, T.SKIPPED: 1}, found.never_sent, found.not_needed).state is W.SUCCESS
