"""Retention under sustained load: does it keep up at 1,000 tasks/s, and what does it cost?

A feeder applies realistic task events (``benchmarks/ingest.py``'s generator: successes,
failures, retries, children; encoded and decoded as ingest does) at a fixed rate of tasks
per second, stamped with the real clock, while the server's ``Maintenance`` runs beside it
with a short retention, exactly as ``stemtrace server`` runs it. Once the first workflows
pass the retention, every round must delete as many tasks as arrived meanwhile.

Reported every few seconds and at the end: tasks stored, the age of the oldest workflow
(retention keeps up when it stays near ``retention + every``), the store's size on disk
(SQLite: file + WAL), and wall and CPU seconds of the feeder and of maintenance.

    python benchmarks/retention.py                                  # SQLite, 1,000 tasks/s, 120 s
    python benchmarks/retention.py --rate 2000 --seconds 180 --retention 60
    python benchmarks/retention.py --store "postgresql://postgres@127.0.0.1/test?schema=bench_ret"
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support

from tests.support.wire import encode_envelopes

from ingest import Gen  # the ingest benchmark's realistic generator


def tasks_for(gen: Gen, count: int) -> list[dict[str, Any]]:
    """Events of ``count`` tasks (a parent sometimes spawns children, as in a real app)."""
    out: list[dict[str, Any]] = []
    made = 0
    while made < count:
        parent = gen.task()
        out += parent
        made += 1
        if gen.rnd.random() < 0.3 and made < count:
            pid = parent[0]["task"]["id"]
            for _ in range(min(gen.rnd.randint(1, 4), count - made)):
                out += gen.task(parent=pid)
                made += 1
    return out


def store_bytes(url: str) -> int | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.split("sqlite:///", 1)[1]
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def count_and_oldest(store: Any, now: float) -> tuple[int, float]:
    with store.pool.connection() as conn:
        tasks = int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        oldest = conn.execute("SELECT MIN(ingested_at) FROM workflows").fetchone()[0]
    return tasks, (now - float(oldest)) if oldest is not None else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="tasks per second to sustain")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to feed")
    parser.add_argument("--retention", type=float, default=30.0, help="seconds (also failures')")
    parser.add_argument("--every", type=float, default=10.0, help="maintenance interval (the server's)")
    parser.add_argument("--store", default=None, help="store URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    from stemtrace.server.ingest import quiet_gc, short_gil_switches
    from stemtrace.server.jsonfast import decode_payload
    from stemtrace.server.maintenance import Maintenance
    from stemtrace.server.store import open_store

    short_gil_switches()
    quiet_gc()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/retention.db"
        store = open_store(url)
        maint = Maintenance(
            store,
            retention=args.retention,
            failure_retention=args.retention,
            heartbeat_interval=30.0,
            every_s=args.every,
        )
        cost = {"maint_wall": 0.0, "maint_cpu": 0.0, "rounds": 0, "feed_wall": 0.0, "feed_cpu": 0.0}
        cost["longest_round"] = 0.0
        stop = threading.Event()

        def maintain() -> None:  # Maintenance._run, timed
            while not stop.wait(args.every):
                w, c = time.perf_counter(), time.thread_time()
                maint.run_once()
                cost["maint_wall"] += time.perf_counter() - w
                cost["maint_cpu"] += time.thread_time() - c
                cost["rounds"] += 1
                cost["longest_round"] = max(cost["longest_round"], time.perf_counter() - w)

        thread = threading.Thread(target=maintain, daemon=True)
        gen = Gen()
        tick = 0.5
        per_tick = max(1, int(args.rate * tick))
        # Encoded before the clock starts: the library's work is not the server's.
        print(f"encoding {int(args.seconds / tick) * per_tick:,} tasks' events ...", flush=True)
        ready = []
        for _ in range(int(args.seconds / tick)):
            events = tasks_for(gen, per_tick)
            ready.append(
                [m for i in range(0, len(events), 100) for m in encode_envelopes(events[i : i + 100])]
            )
        print(f"store {store.description}: {args.rate} tasks/s for {args.seconds:.0f} s, ", end="")
        print(f"retention {args.retention:.0f} s, maintenance every {args.every:.0f} s")
        print("   t  tasks stored  oldest age  size MB  maint wall/cpu s  rounds")
        thread.start()
        started = time.monotonic()
        next_at = started
        next_report = started + 10.0
        fed = behind_ticks = peak_bytes = 0
        worst_age = 0.0
        for payloads in ready:
            w, c = time.perf_counter(), time.thread_time()
            decoded = [e for p in payloads for e in decode_payload(p)[0]]
            store.apply(decoded, {}, time.time())
            cost["feed_wall"] += time.perf_counter() - w
            cost["feed_cpu"] += time.thread_time() - c
            fed += per_tick
            next_at += tick
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                behind_ticks += 1
            if time.monotonic() >= next_report:
                next_report += 10.0
                tasks, oldest = count_and_oldest(store, time.time())
                size = store_bytes(url) or 0
                peak_bytes = max(peak_bytes, size)
                worst_age = max(worst_age, oldest)
                print(
                    f"{time.monotonic() - started:4.0f}  {tasks:12,}  {oldest:8.1f} s  {size / 1e6:7.1f}  "
                    f"{cost['maint_wall']:7.1f}/{cost['maint_cpu']:<7.1f}  {cost['rounds']:6}"
                )
        wall = time.monotonic() - started
        stop.set()
        thread.join(120)
        tasks, oldest = count_and_oldest(store, time.time())
        deleted = fed - tasks
        steady = args.rate * (args.retention + args.every)
        # Keeping up: no workflow ever lived longer than the retention plus one interval plus the
        # longest round (a round deletes what expired up to its start).
        allowed = args.retention + args.every + cost["longest_round"] + 1.0
        keeps_up = max(worst_age, oldest) <= allowed
        m_cpu, m_wall = max(cost["maint_cpu"], 1e-9), max(cost["maint_wall"], 1e-9)
        print()
        print(
            f"fed          {fed:,} tasks in {wall:.1f} s = {fed / wall:,.0f} tasks/s "
            f"({behind_ticks} ticks late)"
        )
        print(f"feeder       wall {cost['feed_wall']:.1f} s, CPU {cost['feed_cpu']:.1f} s (decode + apply)")
        print(
            f"maintenance  {cost['rounds']} rounds, wall {cost['maint_wall']:.1f} s, "
            f"CPU {cost['maint_cpu']:.1f} s"
        )
        print(
            f"deleted      {deleted:,} tasks ({maint.expired:,} workflows): "
            f"{deleted / m_cpu:,.0f} tasks per CPU second, {deleted / m_wall:,.0f} per wall second; "
            f"{maint.reclaimed_pages:,} pages reclaimed"
        )
        print(f"at the end   {tasks:,} tasks stored (steady state ~{steady:,.0f}), oldest {oldest:.1f} s old")
        if peak_bytes:
            print(f"size         peak {peak_bytes / 1e6:.1f} MB, end {(store_bytes(url) or 0) / 1e6:.1f} MB")
        print(
            f"oldest age   at most {max(worst_age, oldest):.1f} s "
            f"(allowed {allowed:.1f} s: retention + interval + longest round)"
        )
        print(f"retention keeps up: {'yes' if keeps_up else 'NO'}")
        if not url.startswith("sqlite"):
            print("(PostgreSQL: CPU seconds are this process's; the database server's own are not counted)")
        store.close()


if __name__ == "__main__":
    main()
