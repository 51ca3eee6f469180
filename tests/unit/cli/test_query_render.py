"""The terminal renderings of API answers (pure functions: JSON in, lines out)."""

from __future__ import annotations

from typing import Any

from stemtrace import query_render as render


def node(tid: str, name: str, state: str = "SUCCESS", sent: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"id": tid, "name": name, "state": state, "runtime_ms": 12.0, "sent_at": sent, "plumbing": False}


def test_a_chain_into_a_fan_out_lists_failed_members_first_and_counts_the_rest() -> None:
    members = [f"m{i:02d}" for i in range(30)]
    states = {"m07": "FAILURE", "m21": "FAILURE", "m03": "STARTED"}
    graph = {
        "id": "wf", "name": "chord", "state": "FAILURE", "task_count": 33,
        "nodes": [node("a", "fetch", sent="2026-01-01T00:00:00Z"), node("cb", "summarize", "PENDING"),
                  node("z", "store", "PENDING")]
        + [node(m, "score", states.get(m, "SUCCESS"), sent="2026-01-01T00:00:01Z") for m in members],
        "edges": [{"source": "a", "target": m, "kind": "chain"} for m in members]
        + [{"source": m, "target": "cb", "kind": "chord"} for m in members]
        + [{"source": "cb", "target": "z", "kind": "chain"}],
        "groups": [{"id": "g", "kind": "chord", "members": members, "callback": "cb"}],
    }  # fmt: skip
    lines = render.workflow_tree(graph)
    assert lines[0].startswith("chord  FAILURE  (33 tasks)")
    assert lines[1].strip().startswith("fetch  SUCCESS  a")
    assert lines[2].strip().startswith("→ chord x30  (27 SUCCESS, 2 FAILURE, 1 STARTED)")
    shown = [line.split()[3] for line in lines[3 : 3 + render.FANOUT_SHOWN]]
    assert shown[:2] == ["m07", "m21"] and shown[2] == "m03"  # failed, then running, then the rest
    assert lines[3 + render.FANOUT_SHOWN].strip() == f"… {30 - render.FANOUT_SHOWN} more members"
    assert lines[-2].strip().startswith("then summarize  PENDING  cb")
    assert lines[-1].strip().startswith("→ store  PENDING  z")


def test_spawned_children_are_indented_under_their_parent() -> None:
    graph = {
        "id": "p", "name": "import", "state": "SUCCESS", "task_count": 2,
        "nodes": [node("p", "import"), node("c", "page", sent="2026-01-01T00:00:02Z")],
        "edges": [{"source": "p", "target": "c", "kind": "spawn"}], "groups": [],
    }  # fmt: skip
    assert render.workflow_tree(graph)[1:] == [
        "  import  SUCCESS  p  12 ms",
        "    [spawn] page  SUCCESS  c  12 ms",
    ]


def test_an_attempt_shows_the_three_waits() -> None:
    attempt = {
        "number": 1, "state": "SUCCESS", "worker": "w1",
        "received_at": "2026-01-01T00:00:00.750Z", "started_at": "2026-01-01T00:00:00.779Z",
        "finished_at": "2026-01-01T00:00:01.779Z", "runtime_ms": 1000.0,
    }  # fmt: skip
    line = render.attempt_line(attempt, sent_at="2026-01-01T00:00:00.029Z")
    assert "queued 721 ms · reserved 29 ms · ran 1.00 s" in line


def test_arguments_read_as_a_call() -> None:
    assert (
        render.call("proj.resize_image", [4527, 1280], {"fmt": "png"})
        == "resize_image(4527, 1280, fmt='png')"
    )
    assert render.duration(125_000) == "2 min 05 s"
