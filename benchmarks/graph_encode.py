"""A large workflow graph's JSON: the route's bytes path against the pydantic models (ADR 0008).

A 4,999-member group (the largest fan-out the server draws before collapsing it) is folded from
a real-shaped event stream (the unit tests' canvas recorder) and encoded both ways, alternating,
in CPU time; the graph build is timed beside them for scale.

    PYTHONPATH=src:.:tests/unit/core:tests/unit/server:tests python benchmarks/graph_encode.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from canvas_factory import Recorder  # tests/unit/core
from graph_helpers import fold_all  # tests/unit/core
from test_workflow_graph_json import pydantic_graph  # tests/unit/server: the reference mapping

from stemtrace.core.workflow import build_workflow
from stemtrace.server.api.graph_json import workflow_graph_json

MEMBERS = 4999


def _cpu_ms(fn: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    r = Recorder()
    for i in range(MEMBERS):
        r.publish("client", f"m{i}", group="G1", gidx=i, root="m0")
        r.run(f"m{i}")
    records = fold_all(r.events)
    graph = build_workflow("m0", records)
    assert workflow_graph_json(graph) == pydantic_graph(graph).model_dump_json().encode()
    print(f"{len(graph.nodes)} nodes")
    for round_ in range(3):
        for label, fn in (
            ("bytes", lambda: workflow_graph_json(graph)),
            ("pydantic", lambda: pydantic_graph(graph).model_dump_json().encode()),
        ):
            low, mid = _cpu_ms(fn)
            print(f"round {round_}: {label:8} min {low:.0f} ms, median {mid:.0f} ms CPU")
    low, _ = _cpu_ms(lambda: build_workflow("m0", records))
    print(f"graph build: min {low:.0f} ms CPU")


if __name__ == "__main__":
    main()
