"""Benchmark: fold and build the graph of a 10,000-task workflow.

Two shapes from the issue: a chord of 10,000 header tasks, and one task spawning
10,000 children. Reports the median of several runs for ``build_workflow`` alone
(what the API does per request, records already stored) and for folding the
events into records (what ingest does). Run: ``python benchmarks/graph_build.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from stemtrace.core.events import Event, Source
from stemtrace.core.model import TaskRecord
from stemtrace.core.task import fold_task
from stemtrace.core.workflow import build_workflow

N = 10_000
_seq: dict[str, int] = defaultdict(int)


def _event(inst: str, etype: str, task_id: str, name: str, ts: float, **data: Any) -> Event:
    _seq[inst] += 1
    proc = "client" if inst == "client" else "child"
    src = Source(
        host="h", pid=1, inst=inst, seq=_seq[inst], proc=proc, node=None if proc == "client" else "w1@h"
    )
    return Event(type=etype, ts=ts, src=src, task_id=task_id, task_name=name, data=data)


def _run(events: list[Event], task_id: str, name: str, ts: float, **published: Any) -> None:
    events.append(_event("client", "task.published", task_id, name, ts, retries=0, **published))
    events.append(_event("main", "task.received", task_id, name, ts + 0.001, retries=0))
    events.append(_event("child", "task.started", task_id, name, ts + 0.002, retries=0))
    events.append(_event("child", "task.succeeded", task_id, name, ts + 0.003, retries=0, runtime=0.001))


def chord_events(n: int = N) -> list[Event]:
    events: list[Event] = []
    body = {"type": "task", "id": "body", "name": "tsum", "group_id": "G"}
    for i in range(n):
        canvas = {"chain": [], "chord": body, "callbacks": [], "errbacks": []}
        _run(
            events,
            f"h{i:05d}",
            "add",
            1.0 + i * 1e-4,
            root_id=f"h{i:05d}",
            group_id="G",
            group_index=i,
            canvas=canvas,
        )
    _run(events, "body", "tsum", 10.0, root_id="h09999", parent_id="h09999", group_id="G")
    return events


def spawner_events(n: int = N) -> list[Event]:
    events: list[Event] = []
    _run(events, "spawner", "spawn", 1.0, root_id="spawner")
    for i in range(n):
        _run(events, f"k{i:05d}", "add", 2.0 + i * 1e-4, root_id="spawner", parent_id="spawner")
    return events


def fold(events: list[Event]) -> list[TaskRecord]:
    by_id: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_id[event.task_id or ""].append(event)
    return [fold_task(task_id, evs) for task_id, evs in by_id.items()]


def timings_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) wall time; the best run is the figure least disturbed by a busy machine."""
    times: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"python {sys.version.split()[0]}, n={N}, median of {repeat} runs")
    for label, make in (("chord of 10,000", chord_events), ("spawner of 10,000", spawner_events)):
        events = make()
        records = fold(events)
        graph = build_workflow("wf", records)
        assert graph.task_count == N + 1, graph.task_count
        build, build_best = timings_ms(partial(build_workflow, "wf", records), repeat)
        folding, _ = timings_ms(partial(fold, events), max(1, repeat // 3))
        print(
            f"{label:20s} build_workflow median {build:6.1f} ms (best {build_best:6.1f})"
            f"   fold_task x{len(records)} {folding:6.1f} ms"
        )


if __name__ == "__main__":
    main()
