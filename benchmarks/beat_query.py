"""Latency of the Beat page's requests (``/api/beat``, ``/api/beat/{entry}``, ``/api/tasks?beat=``)
in a store of a million ordinary tasks beside a day of beat runs.

The store is filled through ``Store.apply`` (the ingest path): ``--tasks`` ordinary tasks (from
``query.py``'s generator) and beat runs as a beat process sends them, a ``task.published`` naming
its entry then the worker's outcome: ``--entries`` entries of ``--runs`` runs each (one run a
minute, a stop of an hour in each) plus one entry every second for a day (86,400 runs). Requests
go through the real ASGI app (FastAPI's ``TestClient``) in a fresh process.

    python benchmarks/beat_query.py --store sqlite:///tmp/beat.db
    python benchmarks/beat_query.py --store sqlite:///tmp/beat.db --reuse

Measured at the Beat page's landing (1,000,000 tasks + 186,400 beat runs in 21 entries, SQLite,
a 2-core host at load average 14-18): ``/api/beat`` 34-35 ms CPU per request (p50 wall 94-99 ms
on that loaded host), ``/api/beat/{entry}`` 8.5 ms CPU, ``/api/tasks?beat=`` 9.4 ms CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import _fill_random, timed
from stemtrace.core.events import decode_event

T0 = 1_790_000_000.0


def beat_events(entry: str, task: str, times: list[float]) -> list[Any]:
    inst, out = uuid.uuid4().hex, []
    for seq, at in enumerate(times):
        tid = str(uuid.uuid4())
        for i, (etype, data) in enumerate(
            (
                ("task.published", {"root_id": tid, "queue": "celery", "beat": entry}),
                ("task.succeeded", {"runtime": 0.01}),
            )
        ):
            src = {"host": "b", "pid": 1, "inst": inst, "seq": 2 * seq + i + 1, "proc": "beat", "node": None}
            out.append(
                decode_event(
                    {
                        "v": 1,
                        "type": etype,
                        "ts": at + i * 0.01,
                        "task": {"id": tid, "name": task},
                        "data": data,
                        "src": src,
                    }
                )
            )
    return out


def fill(store: Any, tasks: int, entries: int, runs: int, batch: int) -> None:
    started = time.perf_counter()
    _fill_random(store, tasks, batch)
    total = 0
    plans = [
        (
            f"every-minute-{e}",
            f"proj.periodic_{e}",
            [T0 + 60.0 * i + (3600 if i > runs // 2 else 0) for i in range(runs)],
        )
        for e in range(entries)
    ]
    plans.append(("every-second", "proj.heartbeat", [T0 + float(i) for i in range(86_400)]))
    for entry, task, times in plans:
        events = beat_events(entry, task, times)
        total += len(times)
        for i in range(0, len(events), batch):
            store.apply(events[i : i + batch], {}, time.time())
    took = time.perf_counter() - started
    print(
        json.dumps({"bench": "fill", "tasks": tasks, "beat_runs": total, "seconds": round(took, 1)}),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="use the existing store, do not fill")
    args = parser.parse_args()
    from stemtrace.server import create_app
    from stemtrace.server.store import open_store

    store = open_store(args.store)
    if not args.reuse:
        fill(store, args.tasks, args.entries, args.runs, args.batch)
        store.close()
        cmd = [sys.executable, __file__, "--reuse", "--store", args.store, "--requests", str(args.requests)]
        raise SystemExit(subprocess.call(cmd))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    since = T0 + 86_400 - 3600.0  # the window the page asks for: the last hour of the data
    with TestClient(create_app(store=store, ingest=False)) as c:
        cases = [
            ("entries, last day", "/api/beat", {"since": T0}),
            ("entries, last hour", "/api/beat", {"since": since}),
            ("one entry's runs (86,400 stored)", "/api/beat/every-second", {"limit": 200}),
            ("an entry's runs (5,000 stored)", "/api/beat/every-minute-3", {"limit": 200}),
            ("task list filtered on an entry", "/api/tasks", {"beat": "every-second", "limit": 200}),
        ]
        for label, url, params in cases:
            print(json.dumps(timed(c, url, params, args.requests, label=label)), flush=True)
    store.close()


if __name__ == "__main__":
    main()
