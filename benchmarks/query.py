"""Task-list latency (p50/p95) with and without filters, ``q`` search, the graphs of a
10,000-task chord and a 10,000-task spawner (cold and cached), and server RSS.

The store is filled through ``Store.apply`` -- the same bulk write path the ingest
thread uses (decode, fold, upsert) -- with generated events, in large batches; then
the queries run in a fresh process so its RSS is what a server serving them needs.

    python benchmarks/query.py --tasks 1000000 --store sqlite:///tmp/q.db
    python benchmarks/query.py --tasks 1000000 --store sqlite:///tmp/q.db --reuse   # skip the fill
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from stemtrace.core.events import decode_event

NAMES = [f"proj.task_{i}" for i in range(20)]
STATES = ["SUCCESS"] * 8 + ["FAILURE", "STARTED"]


def fill(store: Any, tasks: int, batch_events: int) -> None:
    from graph_build import chord_events, spawner_events

    started = time.perf_counter()
    # The two 10,000-task workflows of the issue, then ordinary tasks up to ``tasks``.
    for events in (chord_events(), spawner_events()):
        for i in range(0, len(events), batch_events):
            store.apply(events[i : i + batch_events], {}, time.time())
    _fill_random(store, tasks - 20_002, batch_events)
    took = time.perf_counter() - started
    print(
        json.dumps(
            {"bench": "fill", "tasks": tasks, "seconds": round(took, 1), "tasks_per_s": round(tasks / took)}
        ),
        flush=True,
    )


def _fill_random(store: Any, tasks: int, batch_events: int) -> None:
    rnd = random.Random(3)
    inst, seq, t0 = uuid.uuid4().hex, 0, 1_790_000_000.0
    batch: list[Any] = []

    def ev(etype: str, tid: str, name: str, ts: float, **data: Any) -> Any:
        nonlocal seq
        seq += 1
        return decode_event(
            {
                "v": 1,
                "type": etype,
                "ts": ts,
                "task": {"id": tid, "name": name},
                "data": data,
                "src": {
                    "host": "b",
                    "pid": 1,
                    "inst": inst,
                    "seq": seq,
                    "proc": "child",
                    "node": f"w{rnd.randint(1, 8)}@b",
                },
            }
        )

    for i in range(tasks):
        tid = str(uuid.uuid4())
        name = rnd.choice(NAMES)
        ts = t0 + i * 0.01
        pub = {
            "root_id": tid,
            "queue": rnd.choice(["celery", "io", "cpu"]),
            "args": [i, "user-" + str(rnd.randint(1, 10**6))],
        }
        batch.append(ev("task.published", tid, name, ts, **pub))
        state = rnd.choice(STATES)
        if state != "PENDING":
            batch.append(ev("task.started", tid, name, ts + 0.001))
        if state == "SUCCESS":
            batch.append(ev("task.succeeded", tid, name, ts + 0.002, runtime=rnd.random()))
        elif state == "FAILURE":
            batch.append(
                ev("task.failed", tid, name, ts + 0.002, exception_type="ValueError", exception="bad")
            )
        if len(batch) >= batch_events:
            store.apply(batch, {}, time.time())
            batch = []
    if batch:
        store.apply(batch, {}, time.time())


def timed(
    client: Any, url: str, params: dict[str, Any], runs: int, *, before: Any = None, label: str = ""
) -> dict[str, Any]:
    samples = []
    status = None
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        r = client.get(url, params=params)
        samples.append((time.perf_counter() - t) * 1000)
        status = r.status_code
    samples.sort()
    return {
        **({"case": label} if label else {}),
        "url": url,
        "params": params,
        "status": status,
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
    }


def peak_rss_mb() -> float:
    """This process's peak RSS since it started (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that across ``execve``, so a process
    started by the fill (``subprocess`` uses ``vfork``) would report the fill's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--store", default="sqlite:////tmp/stemtrace-query-bench.db")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=30_000, help="events per fill transaction")
    parser.add_argument("--reuse", action="store_true", help="use the existing store, do not fill")
    args = parser.parse_args()
    from stemtrace.server import create_app
    from stemtrace.server.graph_cache import GraphCache
    from stemtrace.server.store import open_store

    if not args.reuse:
        store = open_store(args.store)
        fill(store, args.tasks, args.batch)
        store.close()
        # Measure in a fresh process: the fill's peak memory is not the server's.
        cmd = [sys.executable, __file__, "--reuse", "--store", args.store, "--runs", str(args.runs)]
        raise SystemExit(subprocess.call([*cmd, "--tasks", str(args.tasks)]))
    store = open_store(args.store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = create_app(store=store, ingest=False)
    with TestClient(app) as c:
        newest = c.get("/api/tasks", params={"limit": 50}).json()
        mid_cursor = newest["next_cursor"]
        cases = [
            ("/api/tasks", {"limit": 50}),
            ("/api/tasks", {"limit": 500}),
            ("/api/tasks", {"limit": 50, "cursor": mid_cursor}),
            ("/api/tasks", {"limit": 50, "name": "proj.task_7"}),
            ("/api/tasks", {"limit": 50, "state": "FAILURE"}),
            ("/api/tasks", {"limit": 50, "state": ["FAILURE", "STARTED"], "name": "proj.task_3"}),
            ("/api/tasks", {"limit": 50, "worker": "w3@b", "queue": "io"}),
            ("/api/tasks", {"limit": 50, "since": "2026-09-21T12:00:00Z", "until": "2026-09-22T00:00:00Z"}),
            ("/api/tasks", {"limit": 50, "q": newest["items"][10]["id"][:6]}),
            ("/api/tasks", {"limit": 50, "q": newest["items"][10]["id"][:2]}),
            ("/api/tasks", {"limit": 50, "q": "user-4242"}),
            ("/api/tasks", {"limit": 50, "q": "no-such-text"}),
            ("/api/workflows", {"limit": 50}),
        ]
        for url, params in cases:
            print(json.dumps({"bench": "query", **timed(c, url, params, args.runs)}), flush=True)
        ctx = app.state.stemtrace

        def cold() -> None:
            ctx.graphs = GraphCache()

        graph_runs = max(5, args.runs // 5)
        for wf, label in (("h00000", "chord of 10,000"), ("spawner", "spawner of 10,000")):
            # The first request for the workflow in this process: nothing of it cached anywhere
            # in the server (its rows not yet read on this connection, no graph built).
            started = time.perf_counter()
            first = c.get(f"/api/workflows/{wf}")
            first_ms = (time.perf_counter() - started) * 1000
            graph = first.json()
            # Above 5,000 tasks the server collapses big sibling sets: drawn nodes plus the tasks
            # inside collapsed ones still account for the whole workflow.
            nodes = len(graph["nodes"]) + int(graph.get("collapsed_tasks") or 0)
            assert nodes >= 10_000, nodes
            print(
                json.dumps(
                    {
                        "bench": "graph",
                        "case": f"{label}, first request",
                        "url": f"/api/workflows/{wf}",
                        "status": first.status_code,
                        "ms": round(first_ms, 1),
                    }
                ),
                flush=True,
            )
            for kind, hook in (("cold", cold), ("cached", None)):
                result = timed(
                    c, f"/api/workflows/{wf}", {}, graph_runs, before=hook, label=f"{label}, {kind}"
                )
                print(json.dumps({"bench": "graph", **result}), flush=True)
    rss_mb = peak_rss_mb()
    print(
        json.dumps({"bench": "rss", "tasks": args.tasks, "max_rss_mb": round(rss_mb, 1), "pid": os.getpid()})
    )
    store.close()


if __name__ == "__main__":
    main()
