"""Record a real workload's event stream for ``benchmarks/replay.py``.

A prefork ``celery worker`` (2 processes) hooked by ``stemtrace.init`` runs on the real Redis
(its own key prefix, queue and events stream) while this process, hooked too, publishes a mix
shaped like a real shop's: chains, groups of 20-200, chords with chains in their header and a
chord of chords, retries that recover and retries that give up, failures, tasks that spawn
children, countdown (ETA) tasks, and plain calls with searchable text arguments. The producer
publishes faster than two processes drain (as fast as it can, or ``--rate`` tasks/s; the run
warns when no backlog built), so a queue backlog builds: a task's ``received``/``started``/
``succeeded`` arrive long after its ``published``, as in a real deployment, and not within a few
events of each other as in ``benchmarks/ingest.py``.

Every entry the library appended to the events stream is saved, in stream order, exactly as
the server reads it (the entry's ``b`` field, the transport payload), in a gzip'd JSON-lines
file: a first line of metadata (mix, counts, versions, the backlog seen), then one line per
entry ``{"id": "<stream id>", "b": "<payload>"}`` (``"b64"`` instead of ``"b"`` for a payload
that is not UTF-8).

    PYTHONPATH=src:. python benchmarks/record.py --tasks 20000 --out /tmp/stemtrace-rec.jsonl.gz
    PYTHONPATH=src:. python benchmarks/record.py --tasks 2000 --out benchmarks/recordings/sample.jsonl.gz
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import json
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import celery
import redis
from celery import chain, chord, group
from tests.support import AppSettings, TaskKit, WorkerProcess, make_app

import stemtrace
from stemtrace.server.jsonfast import decode_payload

# Shapes with their weight in draws; "tasks" in the metadata counts what each really sent.
MIX: dict[str, int] = {
    "call": 40,  # a single task with text arguments
    "chain": 12,  # chain of 3
    "group": 2,  # group of 20-200
    "chord": 3,  # chord of 5-30 chains of 2, then a callback
    "chord_of_chords": 1,  # 2-4 chords of 3-8 in a chord's header
    "retry_recovers": 6,  # fails 1-2 times, then succeeds
    "retry_gives_up": 2,  # retries 5 times, then fails
    "failure": 6,
    "spawner": 4,  # spawns 3-20 children from its body
    "countdown": 4,  # runs 1-5 s after it was published
}


class Producer:
    """Draws shapes and publishes them at about ``rate`` tasks/s; counts what it sent."""

    def __init__(self, kit: TaskKit, rnd: random.Random) -> None:
        self.t = kit
        self.rnd = rnd
        self.sent: collections.Counter[str] = collections.Counter()  # tasks per shape
        self.serial = 0

    def text(self) -> str:
        self.serial += 1
        return f"order-{self.serial}-user-{self.rnd.randint(1, 10**6)}"

    def publish(self, shape: str) -> int:
        """Publish one ``shape``; returns how many tasks it will run (spawned ones included)."""
        t, rnd = self.t, self.rnd
        if shape == "call":
            t.echo.delay(self.text(), rnd.randint(0, 10**6), customer=self.text())
            n = 1
        elif shape == "chain":
            chain(t.add.s(rnd.randint(0, 99), 1), t.add.s(2), t.add.s(3)).apply_async()
            n = 3
        elif shape == "group":
            size = rnd.randint(20, 200)
            group(t.add.s(i, rnd.randint(0, 9)) for i in range(size)).apply_async()
            n = size
        elif shape == "chord":
            size = rnd.randint(5, 30)
            chord(chain(t.add.s(i, 1), t.add.s(1)) for i in range(size))(t.tsum.s())
            n = 2 * size + 1
        elif shape == "chord_of_chords":
            sizes = [rnd.randint(3, 8) for _ in range(rnd.randint(2, 4))]
            inner = [chord([t.add.s(i, j) for j in range(k)], t.tsum.s()) for i, k in enumerate(sizes)]
            chord(inner)(t.echo.s(self.text()))
            n = sum(sizes) + len(sizes) + 1
        elif shape == "retry_recovers":
            fails = rnd.randint(1, 2)
            t.flaky.delay(fails)
            n = fails + 1
        elif shape == "retry_gives_up":
            t.flaky.delay(9)  # max_retries=5: the sixth failure is final
            n = 6
        elif shape == "failure":
            t.fail.delay(f"invalid input for {self.text()}")
            n = 1
        elif shape == "spawner":
            children = rnd.randint(3, 20)
            t.spawner.delay(children)
            n = children + 1
        else:  # countdown
            t.add.apply_async((rnd.randint(0, 99), 7), countdown=rnd.uniform(1, 5))
            n = 1
        self.sent[shape] += n
        return n


class StreamReader(threading.Thread):
    """Copies the events stream's entries as they arrive (before any trimming can drop them)."""

    def __init__(self, client: Any, key: str) -> None:
        super().__init__(daemon=True)
        self.client, self.key = client, key
        self.entries: list[tuple[bytes, bytes]] = []
        self.last_new = time.monotonic()
        self.stop_event = threading.Event()
        self.last_id = b"0-0"

    def read_once(self) -> int:
        got = 0
        while True:
            reply = self.client.xrange(self.key, min=b"(" + self.last_id, count=2000)
            if not reply:
                return got
            for entry_id, fields in reply:
                self.entries.append((entry_id, fields[b"b"]))
            self.last_id = reply[-1][0]
            got += len(reply)
            self.last_new = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.wait(0.3):
            self.read_once()


def record(args: argparse.Namespace) -> None:
    settings = AppSettings()
    kit = make_app(settings)
    client = redis.Redis.from_url(settings.broker_url)
    queue_key = settings.prefix + settings.queue
    reader = StreamReader(client, settings.stream_key)
    reader.start()
    rnd = random.Random(args.seed)
    producer = Producer(kit, rnd)
    shapes, weights = zip(*MIX.items(), strict=True)
    depth: list[int] = []
    with WorkerProcess(settings, pool="prefork", concurrency=2) as worker:
        del worker  # readiness is all we need from it
        started = time.monotonic()
        planned = 0
        while planned < args.tasks:
            planned += producer.publish(rnd.choices(shapes, weights)[0])
            ahead = planned / args.rate - (time.monotonic() - started) if args.rate else 0.0
            if ahead > 0:
                time.sleep(ahead)
            if planned % 500 < 3:
                depth.append(int(client.llen(queue_key)))
        published_s = time.monotonic() - started
        print(json.dumps({"published": planned, "seconds": round(published_s, 1)}), flush=True)
        # Done when the queue is empty and the stream has been quiet for a while (retries and
        # countdown tasks wait in the worker, not in the queue).
        while True:
            time.sleep(1.0)
            length = int(client.llen(queue_key))
            depth.append(length)
            if length == 0 and time.monotonic() - reader.last_new > args.quiet:
                break
            if time.monotonic() - started > args.timeout:
                print(json.dumps({"warning": "timeout; saving what arrived"}), flush=True)
                break
        elapsed = time.monotonic() - started
    time.sleep(2.0)  # the worker's shutdown flush
    reader.stop_event.set()
    reader.join()
    reader.read_once()
    client.delete(settings.stream_key, queue_key)
    save(args, reader.entries, producer, depth=depth, elapsed=elapsed, published_s=published_s)


def summarize(entries: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Event counts, tasks, and how long after its ``published`` a task was ``received``."""
    types: collections.Counter[str] = collections.Counter()
    published: dict[str, float] = {}
    delays: list[float] = []
    tasks: set[str] = set()
    malformed = 0
    for _, payload in entries:
        events, errors = decode_payload(payload)
        malformed += len(errors)
        for e in events:
            types[e.type] += 1
            if e.task_id:
                tasks.add(e.task_id)
                if e.type == "task.published" and e.task_id not in published:
                    published[e.task_id] = e.ts
                elif e.type == "task.received" and e.task_id in published:
                    delays.append(e.ts - published.pop(e.task_id))
    delays.sort()
    backlog = {}
    if delays:
        backlog = {
            "received_after_published_p50_s": round(statistics.median(delays), 2),
            "received_after_published_p95_s": round(delays[int(0.95 * (len(delays) - 1))], 2),
            "received_after_published_max_s": round(delays[-1], 2),
        }
    return {
        "entries": len(entries),
        "events": sum(types.values()),
        "tasks": len(tasks),
        "malformed": malformed,
        "event_types": dict(sorted(types.items())),
        "backlog": backlog,
    }


def save(
    args: argparse.Namespace,
    entries: list[tuple[bytes, bytes]],
    producer: Producer,
    *,
    depth: list[int],
    elapsed: float,
    published_s: float,
) -> None:
    meta = {
        "format": "stemtrace-recording/1",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "celery": celery.__version__,
        "stemtrace": stemtrace.__version__,
        "python": platform.python_version(),
        "worker": "prefork, concurrency 2, Redis broker and result backend",
        "mix_weights": MIX,
        "tasks_sent_by_shape": dict(producer.sent),
        "producer_rate_tasks_per_s": args.rate,
        "seed": args.seed,
        "published_in_s": round(published_s, 1),
        "drained_in_s": round(elapsed, 1),
        "queue_depth_max": max(depth, default=0),
        **summarize(entries),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=6) as f:
        f.write(json.dumps(meta) + "\n")
        for entry_id, payload in entries:
            line: dict[str, str] = {"id": entry_id.decode()}
            try:
                line["b"] = payload.decode("utf-8")
            except UnicodeDecodeError:
                line["b64"] = base64.b64encode(payload).decode()
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(json.dumps({**meta, "out": str(out), "bytes": out.stat().st_size}), flush=True)
    if meta["backlog"].get("received_after_published_p50_s", 0) < 5:
        # The worker kept up: this is not the backlog a replay is meant to measure.
        print(json.dumps({"warning": "no queue backlog: publish faster (--rate) or record more tasks"}))


def load(path: str) -> tuple[dict[str, Any], list[bytes]]:
    """A recording's metadata and its payloads, in stream order (used by the replayer)."""
    payloads: list[bytes] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        meta = json.loads(f.readline())
        for line in f:
            entry = json.loads(line)
            payloads.append(entry["b"].encode() if "b" in entry else base64.b64decode(entry["b64"]))
    return meta, payloads


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks to run (about)")
    parser.add_argument("--rate", type=float, default=0.0, help="tasks published per second (0: at once)")
    parser.add_argument("--out", default="/tmp/stemtrace-recording.jsonl.gz")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--quiet", type=float, default=8.0, help="seconds without events that end the run")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    sys.setrecursionlimit(10_000)  # deep canvases pickle recursively
    record(args)


if __name__ == "__main__":
    main()
