"""``Design`` walks a canvas once and replays it for every other task that carries it.

The replay is a shortcut: a design built with it must equal the design built by
walking every record's canvases in full, for any records in any order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import canvas_scenarios as sc
import pytest
from canvas_factory import canvas, chain_sig, chord_sig, group_sig, sig
from graph_helpers import fold_all

from stemtrace.core.canvas import Canvas
from stemtrace.core.design import Design
from stemtrace.core.events import decode_event
from stemtrace.core.model import TaskRecord
from stemtrace.core.states import TaskState

FIXTURES = sorted((Path(__file__).parents[2] / "golden" / "fixtures").glob("*.json"))


class FullWalk(Design):
    """A design that never replays: every canvas is parsed (and walked) on its own."""

    def _parse(self, raw: Any) -> tuple[Canvas, bytes | None]:
        return super()._parse(raw)[0], None


def facts(design: Design) -> object:
    return (design.edges, design.planned, design.groups, design.callbacks, design.errbacks)


def check(records: Sequence[TaskRecord], seed: int = 0) -> Design:
    ordered = list(records)
    random.Random(seed).shuffle(ordered)
    fast, full = Design(), FullWalk()
    for record in ordered:
        fast.add_record(record)
        full.add_record(record)
    assert facts(fast) == facts(full)
    assert list(fast.edges) == list(full.edges)  # the same insertion order, too
    return fast


def record(
    task_id: str, *canvases: dict[str, Any], group: str | None = None, index: int | None = None
) -> TaskRecord:
    return TaskRecord(
        id=task_id, name="t", state=TaskState.SUCCESS, group_id=group, group_index=index, canvases=canvases
    )


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_recorded_workflows(fixture: Path) -> None:
    records = fold_all(decode_event(raw) for raw in json.loads(fixture.read_text()))
    for seed in range(3):
        check(records, seed)


SCENARIOS: list[Callable[[], Any]] = [
    sc.chain,
    sc.group,
    sc.chord,
    lambda: sc.chord(v53=True),
    sc.chain_group_upgrade,
    sc.group_of_chains,
    sc.nested_chord,
    sc.chord_mid_chain,
    sc.link,
    sc.replace,
    sc.chord_unlock,
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios(scenario: Callable[[], Any]) -> None:
    for seed in range(3):
        check(fold_all(scenario()), seed)


class CountingWalks(Design):
    walks = 0

    def _walk_canvas(self, task_id: str, group_id: str | None, canvas: Canvas) -> None:
        self.walks += 1
        super()._walk_canvas(task_id, group_id, canvas)


def test_a_big_chord_header_replays_one_edge_per_member() -> None:
    body = sig("body", "tsum", group_id="G")
    header = [record(f"h{i}", canvas(chord=body), group="G", index=i) for i in range(50)]
    design = check(header)
    assert {design.edges[(f"h{i}", "body")] for i in range(50)} == {"chord"}
    assert design.groups["G"].chord and design.groups["G"].callback == "body"
    counting = CountingWalks()
    for member in header:
        counting.add_record(member)
    assert counting.walks == 1


def test_the_same_canvas_in_two_groups_records_a_chord_on_each() -> None:
    body = sig("body", "tsum")
    design = check([record("a", canvas(chord=body), group="G1", index=0),
                    record("b", canvas(chord=body), group="G2", index=0),
                    record("c", canvas(chord=body), group="G2", index=1)])  # fmt: skip
    assert design.groups["G1"].chord and design.groups["G2"].chord


def test_an_empty_chain_in_a_group_passes_the_task_through() -> None:
    # The group's empty member returns its predecessor (the walking task) as an exit:
    # that depends on the task id, so such a canvas is walked in full every time.
    weird = canvas(chain=[group_sig("G", chain_sig(), sig("m", group_index=1)), sig("after")])
    planned_elsewhere = canvas(chain=[sig("x"), sig("y")])
    records = [
        record("x", weird),
        record("y", weird),
        record("p", planned_elsewhere),
        record("z", weird),
    ]
    for seed in range(6):
        check(records, seed)


def test_a_task_named_in_its_own_canvas_is_walked_in_full() -> None:
    # ``task.replace()``: the replaced id is the last step of the canvas it carries.
    own = canvas(chain=[sig("s2"), sig("r")])
    records = [record("r", own), record("q", own), record("s2", own)]
    for seed in range(6):
        design = check(records, seed)
        assert ("s2", "r") in design.edges and ("r", "s2") in design.edges


def test_callbacks_are_remembered_for_every_task() -> None:
    links = canvas(
        callbacks=[sig("cb1", "notify"), sig(None, "log")],
        errbacks=[sig("eb1", "alert")],
        chain=[chord_sig("C", [sig("c1", group_index=0)], sig("cbody"))],
    )
    records = [record(f"t{i}", links, group="G", index=i) for i in range(5)]
    design = check(records)
    for i in range(5):
        assert design.callback_names(f"t{i}") == ({"notify", "log"}, {"alert"})
        assert design.edges[(f"t{i}", "cb1")] == "link"
