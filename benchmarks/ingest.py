"""Ingest throughput: events/s applied by one process into SQLite or PostgreSQL.

A realistic mix, with the fields the library really sends for each event type: ~70% tasks
that succeed (published/received/started/succeeded), 20% failures, 10% retried twice, children
spawned by parents, plus worker heartbeats.
Decoding from JSON is included (the server receives bytes). Optionally measures
catch-up: the time to drain a backlog of queued events from a real Redis stream.

    python benchmarks/ingest.py --events 200000 --store sqlite:///tmp/bench.db
    python benchmarks/ingest.py --events 100000 --store postgresql://postgres@127.0.0.1/test?schema=bench
    python benchmarks/ingest.py --catch-up 100000 --broker redis://127.0.0.1:6379/0
    python benchmarks/ingest.py --events 0 --catch-up 100000 --broker amqp://guest:guest@127.0.0.1:5672//
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # the repository root: tests.support

from tests.support.wire import compact  # noqa: E402

from stemtrace.capture.fields import DATA_FIELDS  # noqa: E402
from stemtrace.core.wire import encode_batch  # noqa: E402


class Gen:
    def __init__(self, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        # Like a real deployment: a client process publishes, each worker's main process
        # receives, its pool children execute (one run's events all come from one child).
        self.clients = [uuid.uuid4().hex for _ in range(2)]
        self.mains = {f"w{w}@bench": uuid.uuid4().hex for w in range(1, 3)}
        self.children = {node: [uuid.uuid4().hex for _ in range(3)] for node in self.mains}
        every = [*self.clients, *self.mains.values(), *(c for cs in self.children.values() for c in cs)]
        self.seqs = {i: itertools.count(1) for i in every}
        self.t = 1_790_000_000.0

    def ev(
        self,
        etype: str,
        tid: str | None,
        name: str | None,
        *,
        inst: str,
        proc: str = "child",
        node: str | None = "w1@bench",
        **data: Any,
    ) -> dict[str, Any]:
        self.t += 0.0005
        out: dict[str, Any] = {
            "v": 1,
            "type": etype,
            "ts": self.t,
            "data": data,
            "src": {
                "host": "bench",
                "pid": 1,
                "inst": inst,
                "seq": next(self.seqs[inst]),
                "proc": proc,
                "node": node,
            },
        }
        if tid:
            out["task"] = {"id": tid, "name": name}
        return out

    def task(self, parent: str | None = None) -> list[dict[str, Any]]:
        tid, r = str(uuid.uuid4()), self.rnd.random()
        name = self.rnd.choice(["proj.add", "proj.fetch", "proj.resize", "proj.email", "proj.report"])
        root = parent or tid
        # The fields the library really sends for each type (capture/signals.py).
        pub = {
            "root_id": root,
            "parent_id": parent,
            "group_id": None,
            "group_index": None,
            "retries": 0,
            "eta": None,
            "expires": None,
            "queue": "celery",
            "exchange": "",
            "routing_key": "celery",
            "replaced_task_nesting": 0,
            "publisher_task_id": parent,
            "shadow": None,
            "ignore_result": False,
            "args": [self.rnd.randint(0, 99), "x"],
            "kwargs": {"user_id": self.rnd.randint(1, 10**6)},
        }
        lineage = {"root_id": root, "parent_id": parent, "group_id": None, "group_index": None}
        # A child task is published by its parent's pool process; a root by a client.
        sender = self.rnd.choice([c for cs in self.children.values() for c in cs] if parent else self.clients)
        out = [self.ev("task.published", tid, name, inst=sender, proc="client", node=None, **pub)]
        attempts = 3 if r > 0.9 else 1
        for n in range(attempts):
            node = self.rnd.choice(sorted(self.mains))
            child = self.rnd.choice(self.children[node])
            run = {"inst": child, "node": node}
            out.append(
                self.ev(
                    "task.received",
                    tid,
                    name,
                    inst=self.mains[node],
                    proc="main",
                    node=node,
                    retries=n,
                    eta=None,
                    expires=None,
                    replaced_task_nesting=0,
                    redelivered=False,
                    exchange="",
                    routing_key="celery",
                    queue="celery",
                    **lineage,
                )
            )
            out.append(self.ev("task.started", tid, name, retries=n, worker_pid=100 + n, **lineage, **run))
            if n < attempts - 1:
                out.append(
                    self.ev(
                        "task.retried", tid, name, retries=n, exception_type="IOError", exception="x", **run
                    )
                )
                out.append(
                    self.ev(
                        "task.published",
                        tid,
                        name,
                        **{**pub, "retries": n + 1, "publisher_task_id": tid},
                        **run,
                    )
                )
            elif r < 0.2:
                out.append(
                    self.ev(
                        "task.failed",
                        tid,
                        name,
                        retries=n,
                        exception_type="ValueError",
                        exception="ValueError('bad input')",
                        traceback="Traceback...",
                        runtime=0.01,
                        origin="child",
                        **run,
                    )
                )
            else:
                out.append(
                    self.ev("task.succeeded", tid, name, retries=n, runtime=0.01, result={"ok": True}, **run)
                )
            # No task.postrun: the library sends one only for IGNORED, REJECTED and killed runs.
        return out

    def stream(self, total: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < total:
            parent = self.task()
            out += parent
            if self.rnd.random() < 0.3:
                pid = parent[0]["task"]["id"]
                for _ in range(self.rnd.randint(1, 4)):
                    out += self.task(parent=pid)
            if self.rnd.random() < 0.05:
                node = self.rnd.choice(sorted(self.mains))
                out.append(
                    self.ev(
                        "worker.heartbeat",
                        None,
                        None,
                        inst=self.mains[node],
                        proc="main",
                        node=node,
                        hostname=node,
                        active=[],
                        processed=1,
                    )
                )
        # Deliveries interleave: shuffle within windows as a broker with several producers would.
        for i in range(0, len(out), 200):
            window = out[i : i + 200]
            self.rnd.shuffle(window)
            out[i : i + 200] = window
        return out[:total]


def messages(events: list[dict[str, Any]], size: int = 100) -> list[bytes]:
    """Transport messages as the library sends them: each one process's compact batch, with rows.

    Every window of ``size`` interleaved events becomes one message per process in it.
    """
    out: list[bytes] = []
    for window in _chunks(events, size):
        by_inst: dict[str, list[dict[str, Any]]] = {}
        for e in window:
            by_inst.setdefault(e["src"]["inst"], []).append(e)
        out.extend(encode_batch(*compact(evs, DATA_FIELDS)) for evs in by_inst.values())
    return out


def bench_apply(store_url: str, total: int, batch: int) -> float:
    from stemtrace.server.jsonfast import decode_payload  # what the ingest loop decodes with
    from stemtrace.server.store import open_store

    payloads = messages(Gen().stream(total))
    store = open_store(store_url)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    applied = 0
    pending = None
    events: list[Any] = []
    # Like the ingest loop: whole messages until a transaction holds ``batch``; the next
    # batch is decoded and planned while the previous one is written (``Store.apply_begin``).
    for i, p in enumerate(payloads):
        events.extend(decode_payload(p)[0])
        if len(events) >= batch or i == len(payloads) - 1:
            prepared = store.prepare(events)  # overlaps the previous batch's inserts and commit
            if pending is not None:
                pending.result()
            pending = store.apply_begin(events, {}, time.time(), prepared=prepared)
            applied += len(events)
            events = []
    if pending is not None:
        pending.result()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    store.close()
    rate = applied / elapsed
    print(
        json.dumps(
            {
                "bench": "ingest",
                "store": store.description,
                "events": applied,
                "seconds": round(elapsed, 2),
                "events_per_s": round(rate),
                # CPU seconds of this process: steadier than wall time on a shared machine.
                "cpu_seconds": round(cpu, 2),
                "events_per_cpu_s": round(applied / cpu),
            }
        )
    )
    return rate


def bench_catch_up(broker: str, total: int, store_url: str) -> float:
    from stemtrace.server.ingest import Ingestor
    from stemtrace.server.store import open_store
    from stemtrace.transport import TransportConfig, resolve

    config = TransportConfig(url=broker, name=f"bench.{uuid.uuid4().hex[:8]}")
    pub = resolve(config).publisher()
    payloads = messages(Gen(2).stream(total))
    for i in range(0, len(payloads), 100):
        pub.send(payloads[i : i + 100])
    pub.close()
    store = open_store(store_url)
    ingestor = Ingestor(store, config, consumer_name="bench")  # the server's default batch size
    t0 = time.perf_counter()
    ingestor.start()
    while ingestor.stats.events < total:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    ingestor.stop()
    store.close()
    if broker.startswith("redis"):
        import redis

        redis.Redis.from_url(broker).delete(config.name)
    else:
        from kombu import Connection

        with Connection(broker) as conn:
            conn.default_channel.queue_delete(config.name)
    print(
        json.dumps(
            {
                "bench": "catch_up",
                "broker": broker.rsplit("@", maxsplit=1)[-1],
                "store": store.description,
                "events": total,
                "seconds": round(elapsed, 2),
                "events_per_s": round(total / elapsed),
            }
        )
    )
    return elapsed


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000, help="events per transaction (server default)")
    parser.add_argument("--store", default=None, help="store URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--catch-up", type=int, default=0, help="also drain this many queued events from --broker"
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="the GIL switch interval, seconds (default: what `stemtrace server` sets)",
    )
    parser.add_argument(
        "--python-gc",
        action="store_true",
        help="keep Python's garbage-collector settings (default: what `stemtrace server` sets)",
    )
    args = parser.parse_args()
    from stemtrace.server.tuning import quiet_gc, short_gil_switches

    if args.switch_interval is None:
        short_gil_switches()
    else:
        sys.setswitchinterval(args.switch_interval)
    if not args.python_gc:
        quiet_gc()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{tmp}/bench.db"
        if args.events:
            bench_apply(store, args.events, args.batch)
        if args.catch_up:
            bench_catch_up(args.broker, args.catch_up, args.store or f"sqlite:///{tmp}/catchup.db")


if __name__ == "__main__":
    main()
