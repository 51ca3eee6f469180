"""A parent with 100,000 children: the graph response's bytes and time, and the server's RSS.

The first run fills the SQLite store given (events through the store's ingest path: each
child published and started, 995 failing, the last 500 still running); later runs open it
and ask ``GET /api/workflows/root`` twice (cold, then cached) in one process, printing the
response size, the time of each request, and ``VmRSS`` before and after with the peak
(``VmHWM``). Workflows over ``fanout.COLLAPSE_OVER`` tasks come with their big sibling sets
collapsed (docs/workflow-model.md, "Huge workflows").

    python benchmarks/huge_fanout.py /tmp/fanout.db   # fill (about a minute)
    python benchmarks/huge_fanout.py /tmp/fanout.db   # measure
"""

from __future__ import annotations

import gc
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "unit" / "server")]

from server_events import EventFactory  # noqa: E402

from stemtrace.server import create_app  # noqa: E402
from stemtrace.server.store import open_store  # noqa: E402

NOW = 1_790_400_000.0
CHILDREN = 100_000


def rss() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) // 1024
    return out


def fill(path: str) -> None:
    store = open_store(f"sqlite:///{path}")
    f = EventFactory(t0=NOW)
    store.apply(f.run("root", "proj.fan_out", 0.0), {}, NOW)
    batch = []
    t0 = time.perf_counter()
    for i in range(CHILDREN):
        tid, at = f"child-{i:06d}", 1.0 + i * 0.001
        sent = {"parent_id": "root", "root_id": "root", "retries": 0}
        batch.append(f.event("task.published", tid, "proj.resize", at, **sent))
        batch.append(f.event("task.started", tid, "proj.resize", at + 0.0005))
        if i < CHILDREN - 500:
            if i % 100 == 7:
                failed = {"exception_type": "OSError"}
                batch.append(f.event("task.failed", tid, "proj.resize", at + 0.0008, **failed))
            else:
                batch.append(f.event("task.succeeded", tid, "proj.resize", at + 0.0008, runtime=0.0003))
        if len(batch) >= 6000:
            store.apply(batch, {}, NOW)
            batch = []
    if batch:
        store.apply(batch, {}, NOW)
    store.close()
    print(f"filled: {CHILDREN:,} children in {time.perf_counter() - t0:.1f} s")


def measure(path: str) -> None:
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    store = open_store(f"sqlite:///{path}")
    with TestClient(create_app(store=store, ingest=False)) as client:
        client.get("/api/health")
        gc.collect()
        before = rss()
        for attempt in ("cold", "cached"):
            t0 = time.perf_counter()
            resp = client.get("/api/workflows/root")
            elapsed = time.perf_counter() - t0
            print(f"{attempt}: HTTP {resp.status_code}, {len(resp.content):,} bytes, {elapsed * 1000:.0f} ms")
            del resp
        gc.collect()
        after = rss()
    print(f"RSS before {before['VmRSS']} MB, after {after['VmRSS']} MB, peak {after['VmHWM']} MB")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "/tmp/stemtrace-fanout.db"
    if os.path.exists(target):
        measure(target)
    else:
        fill(target)
