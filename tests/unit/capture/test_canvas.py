"""Canvas summaries from real Celery signatures (what ``embed`` holds)."""

from __future__ import annotations

from typing import Any

from celery import Celery, chain, chord, group

from stemtrace.capture.canvas import PROTOCOL_1, summarize

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


def _frozen(name: str, task_id: str, link: list[Any] | None = None) -> dict[str, Any]:
    """A signature as a chain freezes it (``task_id`` and ``reply_to`` set) before linking it."""
    options: dict[str, Any] = {"task_id": task_id, "reply_to": "oid"}
    if link is not None:
        options["link"] = link
    return {"task": name, "args": [], "kwargs": {}, "options": options, "subtask_type": None}


def test_protocol_1_chain_links_are_unrolled_into_the_chain() -> None:
    user_link: dict[str, Any] = {
        "task": "t.notify",
        "args": [],
        "kwargs": {},
        "options": {},
        "subtask_type": None,
    }
    step3 = _frozen("t.c", "id-c")
    step2 = _frozen("t.b", "id-b", [step3, user_link])  # the user linked step 2 too
    embed = {"chord": None, "callbacks": [step2], "errbacks": None, PROTOCOL_1: True}
    out = summarize(embed)
    assert out is not None
    assert [(s["id"], s["name"]) for s in out["chain"]] == [("id-b", "t.b"), ("id-c", "t.c")]
    assert out["callbacks"] == []
    assert [c["name"] for c in out["chain"][0]["callbacks"]] == ["t.notify"]
    assert "callbacks" not in out["chain"][1]


def test_protocol_1_user_links_stay_callbacks() -> None:
    user_link: dict[str, Any] = {
        "task": "t.notify",
        "args": [],
        "kwargs": {},
        "options": {},
        "subtask_type": None,
    }
    out = summarize({"chord": None, "callbacks": [user_link], "errbacks": None, PROTOCOL_1: True})
    assert out is not None and out["chain"] == [] and [c["name"] for c in out["callbacks"]] == ["t.notify"]
    # Without the marker (protocol 2), frozen links are links as they are.
    out = summarize({"chain": None, "chord": None, "callbacks": [_frozen("t.b", "id-b")], "errbacks": None})
    assert out is not None and out["chain"] == [] and [c["id"] for c in out["callbacks"]] == ["id-b"]
