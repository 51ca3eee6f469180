"""Any delivery order and any duplication of a workflow's events gives the same graph."""

from __future__ import annotations

from collections.abc import Callable

import canvas_scenarios as sc
import pytest
from graph_helpers import fold_all, graph_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemtrace.core.events import Event

SCENARIOS: dict[str, Callable[[], list[Event]]] = {
    "chain": sc.chain,
    "chain_fail": lambda: sc.chain(fail_second=True),
    "chord_53": lambda: sc.chord(v53=True),
    "chord_fail": lambda: sc.chord(fail_member=True),
    "upgrade": sc.chain_group_upgrade,
    "group_of_chains": sc.group_of_chains,
    "nested_chord": sc.nested_chord,
    "chord_mid_chain": sc.chord_mid_chain,
    "link": sc.link,
    "retry": sc.retry,
    "replace": sc.replace,
    "chord_unlock": sc.chord_unlock,
    "redelivered": sc.redelivered,
}


def _canonical(events: list[Event]) -> object:
    records = sorted(fold_all(events), key=lambda r: r.id)
    graph = graph_of(events, show_plumbing=True)
    return (records, graph)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_shuffled_and_duplicated_events_give_the_same_result(name: str, data: st.DataObject) -> None:
    events = SCENARIOS[name]()
    expected = _canonical(events)
    shuffled = data.draw(st.permutations(events), label="order")
    extra = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
    mixed = data.draw(st.permutations([*shuffled, *extra]), label="mixed")
    assert _canonical(mixed) == expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_any_prefix_builds_a_graph_whose_real_nodes_were_seen(name: str, data: st.DataObject) -> None:
    # A workflow in flight (events still arriving, in any order) always builds,
    # and never shows a task as run that no event reported.
    events = data.draw(st.permutations(SCENARIOS[name]()))
    cut = data.draw(st.integers(min_value=1, max_value=len(events)))
    part = events[:cut]
    seen = {e.task_id for e in part}
    graph = graph_of(part, show_plumbing=True)
    for node in graph.nodes:
        if node.id not in seen:
            assert node.state.value in {"PLANNED", "SKIPPED"}
    assert len({n.id for n in graph.nodes}) == len(graph.nodes)
