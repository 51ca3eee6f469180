"""Search (``q`` on ``/api/tasks``) latency, p50/p95 through HTTP, for old and new tasks, and
what the full-text index costs: store bytes per task and fill rate with and without it.

The store is filled through ``Store.apply`` (the ingest write path) with tasks whose arguments,
keyword arguments, results and exceptions read like a shop's: customers from a list of 5,000,
unique order numbers, a few common words, an exception in one task of ten. The searched tasks
are both among the newest and among the oldest 1% (behind 99% of the store).

    python benchmarks/search.py --tasks 200000 --store sqlite:////tmp/search.db
    python benchmarks/search.py --tasks 200000 --store sqlite:////tmp/search.db --reuse
    python benchmarks/search.py --tasks 50000 --store sqlite:////tmp/s0.db --no-index  # fill rate without
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
import warnings
from typing import Any

from stemtrace.core.events import decode_event

NAMES = [f"shop.task_{i}" for i in range(20)]
CUSTOMERS = [f"cust{i:04d}" for i in range(5000)]
WORDS = ["invoice", "refund", "shipment", "reminder", "export"]
T0 = 1_790_000_000.0


def order(i: int) -> str:
    return f"ord{i * 7919 % 10_000_019:08d}"


def task_id(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def fill(store: Any, tasks: int, batch_events: int) -> tuple[float, float]:
    """Returns the seconds taken and this process's CPU seconds (both threads: ingest's and
    the commit thread; a fairer figure than wall time on a shared machine)."""
    rnd = random.Random(11)
    inst, seq = uuid.uuid4().hex, 0
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
                "src": {"host": "b", "pid": 1, "inst": inst, "seq": seq, "proc": "child", "node": "w1@b"},
            }
        )

    started, cpu = time.perf_counter(), time.process_time()
    for i in range(tasks):
        tid, name, ts = task_id(i), rnd.choice(NAMES), T0 + i * 0.01
        word = WORDS[i % len(WORDS)] if i % 3 else "invoice"
        kwargs = {"customer": CUSTOMERS[i % len(CUSTOMERS)], "order": order(i), "priority": i % 4}
        pub = {"root_id": tid, "queue": "celery", "args": [word, i], "kwargs": kwargs}
        batch.append(ev("task.published", tid, name, ts, **pub))
        batch.append(ev("task.started", tid, name, ts + 0.001))
        if i % 10 == 9:
            batch.append(
                ev(
                    "task.failed",
                    tid,
                    name,
                    ts + 0.002,
                    exception_type="TimeoutError",
                    exception=f"payment gateway timed out after 30s for {order(i)}",
                )
            )
        else:
            result = {"status": "sent", "lines": i % 17, "carrier": rnd.choice(["dhl", "ups", "fedex"])}
            batch.append(ev("task.succeeded", tid, name, ts + 0.002, runtime=0.01, result=result))
        if len(batch) >= batch_events:
            store.apply(batch, {}, time.time())
            batch = []
    if batch:
        store.apply(batch, {}, time.time())
    return time.perf_counter() - started, time.process_time() - cpu


def drop_index(store: Any) -> None:
    with store.writers.connection() as conn:
        if store.dialect.name == "sqlite":
            for trigger in ("insert", "update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS task_search_{trigger}")
            conn.execute("DROP TABLE IF EXISTS task_search")
        else:
            conn.execute("DROP INDEX IF EXISTS tasks_search")


def index_bytes(store: Any) -> dict[str, Any]:
    """Bytes of the index and the average search document, per task."""
    with store.pool.connection() as conn:
        count, doc = conn.execute("SELECT count(*), avg(length(args_text)) FROM tasks").fetchone()
        if store.dialect.name == "sqlite":
            found = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'task_search%' AND aggregate = 0"
            ).fetchone()
            size = found[0] or 0
        else:
            size = conn.execute("SELECT pg_relation_size('tasks_search')").fetchone()[0]
    return {
        "tasks": count,
        "index_bytes_per_task": round(size / max(count, 1), 1),
        "document_chars_per_task": round(float(doc or 0), 1),
    }


def timed(client: Any, params: dict[str, Any], runs: int, label: str) -> dict[str, Any]:
    samples, found = [], None
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get("/api/tasks", params=params)
        samples.append((time.perf_counter() - t) * 1000)
        body = r.json()
        found = (r.status_code, len(body.get("items", [])), body.get("next_cursor") is not None)
    samples.sort()
    return {
        "case": label,
        "params": params,
        "status_items_more": found,
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--store", default="sqlite:////tmp/stemtrace-search-bench.db")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=30_000, help="events per fill transaction")
    parser.add_argument("--reuse", action="store_true", help="use the existing store, do not fill")
    parser.add_argument("--no-index", action="store_true", help="fill without the index (its cost)")
    args = parser.parse_args()
    from stemtrace.server import create_app
    from stemtrace.server.store import open_store

    store = open_store(args.store)
    if not args.reuse:
        if args.no_index:
            drop_index(store)
        took, cpu = fill(store, args.tasks, args.batch)
        out = {"bench": "fill", "tasks": args.tasks, "index": not args.no_index, "seconds": round(took, 1)}
        out["cpu_seconds"] = round(cpu, 1)
        print(json.dumps({**out, "tasks_per_s": round(args.tasks / took)}), flush=True)
        if args.no_index:
            return
    if store.dialect.name == "postgresql":
        with store.pool.connection() as conn:
            conn.execute("ANALYZE tasks")
    print(json.dumps({"bench": "index", **index_bytes(store)}), flush=True)
    n = args.tasks
    old, new = n // 200, n - 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_app(store=store, ingest=False)) as c:
        deep = c.get("/api/tasks", params={"q": "invoice", "limit": 1000}).json()["next_cursor"]
        cases = [
            ("id prefix 6, old task", {"q": task_id(old)[:6]}),
            ("id prefix 13, old task", {"q": task_id(old)[:13]}),
            ("full id, old task", {"q": task_id(old)}),
            ("id prefix 6, new task", {"q": task_id(new)[:6]}),
            ("id prefix 2 (dense)", {"q": task_id(old)[:2]}),
            ("unique word (order), old task", {"q": order(old)}),
            ("unique word (order), new task", {"q": order(new)}),
            ("customer word (1 in 5,000)", {"q": CUSTOMERS[old % len(CUSTOMERS)]}),
            ("dense word (1 in 2)", {"q": "invoice"}),
            ("dense word, deep cursor", {"q": "invoice", "cursor": deep}),
            ("word in result", {"q": "fedex"}),
            ("words in exception message", {"q": "gateway timed"}),
            ("phrase", {"q": '"payment gateway timed out"'}),
            ("key=value, old task", {"q": f"order={order(old)}"}),
            ("key=value, customer", {"q": f"customer={CUSTOMERS[7]}"}),
            ("exclusion", {"q": f"{CUSTOMERS[7]} -invoice"}),
            ("exclusion only + name", {"q": "-invoice", "name": NAMES[3]}),
            ("dense word + name + state", {"q": "refund", "name": NAMES[5], "state": "FAILURE"}),
            ("no match", {"q": "nosuchword"}),
        ]
        for label, params in cases:
            result = timed(c, {"limit": 50, **params}, args.runs, label)
            print(json.dumps({"bench": "search", **result}), flush=True)
    store.close()


if __name__ == "__main__":
    main()
