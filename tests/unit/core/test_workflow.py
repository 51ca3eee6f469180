"""The graph of every canvas, asserted exactly (expectations from docs/research/celery-internals.md §2.3)."""

from __future__ import annotations

import canvas_scenarios as sc
import pytest
from graph_helpers import graph_of, shape

from stemtrace.core.states import TaskState, WorkflowState

OK = "SUCCESS"


def _ok(*ids: str, name: str = "add") -> dict[str, tuple[str, str, int]]:
    return dict.fromkeys(ids, (name, OK, 1))


@pytest.mark.parametrize("v53", [False, True], ids=["5.6", "5.3"])
def test_chord_callback_is_not_a_member_on_any_version(v53: bool) -> None:
    got = shape(graph_of(sc.chord(v53=v53)))
    assert got["nodes"] == {**_ok("h0", "h3"), "b2": ("tsum", OK, 1)}
    assert got["edges"] == {("h0", "b2", "chord"), ("h3", "b2", "chord")}
    assert got["groups"] == {("G1", "chord", ("h0", "h3"), "b2", (("h0",), ("h3",)))}
    assert got["root"] == "h0"


def test_chain_in_forward_order() -> None:
    got = shape(graph_of(sc.chain()))
    assert got["edges"] == {("a0", "a2", "chain"), ("a2", "a1", "chain")}
    assert got["nodes"] == _ok("a0", "a2", "a1")
    assert got["state"] == "SUCCESS"


def test_chain_failing_halfway_skips_the_rest_and_fails_the_workflow() -> None:
    graph = graph_of(sc.chain(fail_second=True))
    got = shape(graph)
    assert got["nodes"] == {"a0": ("add", OK, 1), "a2": ("add", "FAILURE", 1), "a1": ("add", "SKIPPED", 0)}
    assert got["edges"] == {("a0", "a2", "chain"), ("a2", "a1", "chain")}
    assert graph.state is WorkflowState.FAILURE
    assert graph.counts["SKIPPED"] == 1 and graph.counts["FAILURE"] == 1


def test_chain_in_flight_shows_planned_steps() -> None:
    events = sc.chain()
    first = events[:3]  # a0 published, received, started: a2 and a1 only known from the canvas
    graph = graph_of(first)
    assert {n.id: n.state for n in graph.nodes} == {
        "a0": TaskState.STARTED,
        "a2": TaskState.PLANNED,
        "a1": TaskState.PLANNED,
    }
    assert graph.state is WorkflowState.RUNNING
    assert {(e.source, e.target) for e in graph.edges} == {("a0", "a2"), ("a2", "a1")}


def test_group_from_a_client_is_one_workflow_with_members_in_order() -> None:
    got = shape(graph_of(sc.group()))
    assert got["edges"] == set()
    assert got["groups"] == {("G1", "group", ("g0", "g2"), None, (("g0",), ("g2",)))}


@pytest.mark.parametrize("v53", [False, True], ids=["5.6", "5.3"])
def test_chain_into_group_upgraded_to_chord(v53: bool) -> None:
    got = shape(graph_of(sc.chain_group_upgrade(v53=v53)))
    assert got["edges"] == {
        ("a0", "m3", "chain"),
        ("a0", "m4", "chain"),
        ("m3", "b2", "chord"),
        ("m4", "b2", "chord"),
    }
    # a0 fans out into the group, so it is outside the chord's branches.
    assert got["groups"] == {("G1", "chord", ("m3", "m4"), "b2", (("m3",), ("m4",)))}


def test_group_of_chains_draws_heads_inside_their_branch() -> None:
    got = shape(graph_of(sc.group_of_chains()))
    assert got["edges"] == {("x0", "x1", "chain"), ("x2", "x3", "chain")}
    assert got["groups"] == {("G4", "group", ("x0", "x1", "x2", "x3"), None, (("x0", "x1"), ("x2", "x3")))}


@pytest.mark.parametrize("v53", [False, True], ids=["5.6", "5.3"])
def test_chord_of_chords(v53: bool) -> None:
    got = shape(graph_of(sc.nested_chord(v53=v53)))
    assert got["edges"] == {
        ("n0", "n1", "chain"),
        ("n1", "n6", "chord"),
        ("n2", "n4", "chord"),
        ("n7", "n4", "chord"),
        ("n4", "n6", "chord"),
    }
    assert got["groups"] == {
        ("G3", "chord", ("n2", "n7"), "n4", (("n2",), ("n7",))),
        ("G5", "chord", ("n0", "n1", "n2", "n7", "n4"), "n6", (("n0", "n1"), ("n2", "n7", "n4"))),
    }
    assert len(got["nodes"]) == 6


@pytest.mark.parametrize("v53", [False, True], ids=["5.6", "5.3"])
def test_chord_in_the_middle_of_a_chain(v53: bool) -> None:
    got = shape(graph_of(sc.chord_mid_chain(v53=v53)))
    assert got["edges"] == {
        ("a0", "m1", "chain"),
        ("a0", "m3", "chain"),
        ("m1", "b5", "chord"),
        ("m3", "b5", "chord"),
        ("b5", "z2", "chain"),
    }
    assert got["groups"] == {("G1", "chord", ("m1", "m3"), "b5", (("m1",), ("m3",)))}


def test_link_callback_with_a_fresh_id_is_a_link_not_a_spawn() -> None:
    got = shape(graph_of(sc.link()))
    assert got["edges"] == {("l0", "l1", "link")}


def test_spawned_children() -> None:
    got = shape(graph_of(sc.spawner(3)))
    assert got["edges"] == {("sp", f"k{i}", "spawn") for i in range(3)}
    assert got["root"] == "sp"


def test_retries_are_attempts_not_nodes_or_edges() -> None:
    got = shape(graph_of(sc.retry()))
    assert got["nodes"] == {"r0": ("flaky", OK, 3)}
    assert got["edges"] == set()


def test_retry_that_gives_up_fails() -> None:
    graph = graph_of(sc.retry(give_up=True))
    assert shape(graph)["nodes"] == {"r0": ("flaky", "FAILURE", 3)}
    assert graph.state is WorkflowState.FAILURE


def test_replace_keeps_one_node_per_id_and_stays_acyclic() -> None:
    got = shape(graph_of(sc.replace()))
    assert got["nodes"] == {"p0": ("add", OK, 2), "p2": ("add", OK, 1), "p1": ("add", OK, 1)}
    assert got["edges"] == {("p0", "p2", "replace"), ("p0", "p1", "chain")}


@pytest.mark.parametrize("v53", [False, True], ids=["5.6", "5.3"])
def test_chord_unlock_is_folded_away_by_default(v53: bool) -> None:
    got = shape(graph_of(sc.chord_unlock(v53=v53)))
    assert set(got["nodes"]) == {"h1", "h4", "b3"}
    assert got["edges"] == {("h1", "b3", "chord"), ("h4", "b3", "chord")}
    assert got["groups"] == {("G2", "chord", ("h1", "h4"), "b3", (("h1",), ("h4",)))}


def test_chord_unlock_shown_on_request() -> None:
    graph = graph_of(sc.chord_unlock(), show_plumbing=True)
    unlock = next(n for n in graph.nodes if n.id == "u0")
    assert unlock.plumbing and unlock.name == "celery.chord_unlock"
    assert ("u0", "b3", "spawn") in shape(graph)["edges"]
    assert graph.root_id == "h1"  # plumbing is never the display root
    assert graph.task_count == 3


def test_chord_with_a_failed_member_skips_the_callback() -> None:
    graph = graph_of(sc.chord(fail_member=True))
    assert {n.id: n.state.value for n in graph.nodes} == {"h0": OK, "h3": "FAILURE", "b2": "SKIPPED"}
    assert graph.state is WorkflowState.FAILURE


def test_times_and_counts() -> None:
    graph = graph_of(sc.chain())
    assert graph.task_count == 3
    assert graph.counts["SUCCESS"] == 3
    assert graph.started_at is not None and graph.finished_at is not None
    assert graph.started_at < graph.finished_at
    assert graph.name == "add"


def test_running_workflow_has_no_finish_time() -> None:
    events = sc.chord()
    graph = graph_of(events[:-3])  # the callback has not finished yet
    assert graph.state is WorkflowState.RUNNING
    assert graph.finished_at is None
