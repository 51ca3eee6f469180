"""Canvas summaries from real Celery signatures (what ``embed`` holds)."""

from __future__ import annotations

from celery import Celery, chain, chord, group

from stemtrace.capture.canvas import summarize

app = Celery("canvas-test", set_as_current=False)


@app.task(name="c.add")
def add(x: int, y: int = 0) -> int:
    return x + y


def test_remaining_chain_is_sent_in_forward_order_without_arguments() -> None:
    steps = [add.s(1).set(task_id="b"), add.s(2).set(task_id="c")]
    embed = {"chain": list(reversed(steps)), "chord": None, "callbacks": None, "errbacks": None}
    out = summarize(embed)
    assert out is not None
    assert [s["id"] for s in out["chain"]] == ["b", "c"]
    assert all("args" not in s and "kwargs" not in s for s in out["chain"])


def test_chord_callback_links_and_nested_shapes() -> None:
    body = add.s().set(task_id="body", group_id="g1")
    header = group(add.s(1).set(task_id="h0"), add.s(2).set(task_id="h1"))
    nested = chord(header, add.s().set(task_id="cb"))
    embed = {
        "chain": [nested, chain(add.s(1), add.s(2))],
        "chord": body,
        "callbacks": [add.s(9)],
        "errbacks": [add.s(10)],
    }
    out = summarize(embed)
    assert out is not None
    assert out["chord"]["id"] == "body" and out["chord"]["group_id"] == "g1"
    assert out["callbacks"][0]["name"] == "c.add" and out["callbacks"][0]["id"] is None
    assert out["errbacks"][0]["type"] == "task"
    inner_chain, inner_chord = out["chain"]
    assert inner_chain["type"] == "chain" and len(inner_chain["tasks"]) == 2
    assert inner_chord["type"] == "chord"
    assert [t["id"] for t in inner_chord["tasks"]] == ["h0", "h1"]
    assert inner_chord["body"]["id"] == "cb"


def test_no_structure_means_no_canvas_field() -> None:
    assert summarize({"chain": None, "chord": None, "callbacks": None, "errbacks": None}) is None
    assert summarize(None) is None


def test_node_cap_marks_truncation() -> None:
    embed = {"chain": [add.s(i) for i in range(50)]}
    out = summarize(embed, max_nodes=10)
    assert out is not None
    assert len(out["chain"]) == 10 and out["truncated"] is True
