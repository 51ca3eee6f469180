"""Retention under sustained load through a real server: does it keep up at 1,000 tasks/s?

A ``stemtrace server`` subprocess (the same command users run, with a short ``--retention``)
consumes a fresh Redis stream into the store, and its maintenance thread expires workflows
while ingest runs. Several feeder processes publish relabelled copies of a recording of a real
Celery worker (``benchmarks/recordings/sample-1500.jsonl.gz``: chains, groups, chords, retries,
failures, the recorded queue backlog) onto that stream in the wire format, paced so that
together they sustain ``--rate`` tasks per second. Each copy gets new ids and timestamps moved
to the moment it is published (``replay.Relabel``), so every task is new and expires on its own.

Every ``--report`` seconds it prints: tasks fed and stored, the events published but not yet
ingested (backlog), how far behind expiry is (the oldest workflow's age minus the retention:
at most the maintenance interval plus one round when retention keeps up), the store's size on
disk (SQLite: file + WAL; PostgreSQL: the schema's tables and indexes), and the CPU seconds of
the server process.

At the end: the sustained feed rate, the stored task count's plateau against the steady state
(rate x (retention + interval)), the worst expiry lag, size at its peak and at the end, CPU
seconds of the server and of the feeders, and whether ingest and retention kept up.

    PYTHONPATH=src:. python benchmarks/retention.py                     # SQLite, 1,000 tasks/s, 240 s
    PYTHONPATH=src:. python benchmarks/retention.py --rate 1500 --seconds 300 --retention 60
    PYTHONPATH=src:. python benchmarks/retention.py --store "postgresql://postgres@127.0.0.1/test"
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from record import load
from replay import REDIS, Relabel, Server, _proc, drop_store, first_ns, store_size

RECORDING = Path(__file__).parent / "recordings" / "sample-1500.jsonl.gz"
# Stream entries the broker keeps (~200 s of this feed, ~240 MB): a server that falls further behind
# than that loses events, which the server reports as losses; the benchmark would show it.
STREAM_CAP = 20_000
PER_TASK = 6009 / 1421  # the sample recording's events per task


def feeder(  # noqa: PLR0917 (a multiprocessing target takes its arguments positionally)
    index: int,
    feeders: int,
    rate: float,
    seconds: float,
    stream: str,
    start_at: float,
    recording: str,
    fed: Any,
    fed_events: Any,
    cpu: Any,
) -> None:
    """Publish copies ``index, index + feeders, ...``; copy k is due at ``start_at + k * period``.

    A copy's payloads are spread over the ``feeders`` periods until this feeder's next copy,
    so the feeders together publish a steady interleaved mix rather than bursts.
    """
    from stemtrace.transport import TransportConfig, resolve

    meta, payloads = load(recording)
    tasks = int(meta["tasks"])
    period = tasks / rate
    base = first_ns(payloads)
    publisher = resolve(TransportConfig(url=REDIS, name=stream, max_length=STREAM_CAP)).publisher()
    slices = 10
    counts = [_events_in(p) for p in payloads]
    per_slice = -(-len(payloads) // slices)
    copy = index
    while copy * period < seconds:
        due = start_at + copy * period
        relabel = Relabel(
            f"{uuid.uuid4().hex[:6]}c{copy}", time.time_ns() - base + int((due - time.time()) * 1e9)
        )
        ready = [relabel(p) for p in payloads]
        for s in range(slices):
            at = due + s * feeders * period / slices
            wait = at - time.time()
            if wait > 0:
                time.sleep(wait)
            publisher.send(ready[s * per_slice : (s + 1) * per_slice])
            with fed.get_lock():
                fed.value += tasks // slices + (tasks % slices if s == slices - 1 else 0)
            with fed_events.get_lock():
                fed_events.value += sum(counts[s * per_slice : (s + 1) * per_slice])
        copy += feeders
    publisher.close()
    cpu.value = time.process_time()


def _events_in(payload: bytes) -> int:
    from stemtrace.server.jsonfast import decode_payload

    return len(decode_payload(payload)[0])


def _proc_cpu(pid: int) -> float:
    """CPU seconds of the server and its children (its ingest process, by default separate)."""
    return _proc(pid)[0]


def postgres_cpu() -> float:
    """CPU seconds of every ``postgres`` process (all clients': an upper bound on this run's)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def oldest_age(url: str, now: float) -> float:
    """Seconds since the oldest workflow's last event (what retention expires by)."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("sqlite:///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute("SELECT MIN(ingested_at) FROM workflows").fetchone()
    else:
        import psycopg

        base, _, query = url.partition("?")
        schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
        with psycopg.connect(base, autocommit=True) as conn:
            row = conn.execute(f'SELECT MIN(ingested_at) FROM "{schema}".workflows').fetchone()
    return now - float(row[0]) if row and row[0] is not None else 0.0


def sizes(url: str) -> tuple[int, int, int]:
    """(bytes on disk, of which WAL, tasks) without checkpointing (``replay.store_size``
    truncates the WAL, which would hide whether the server reclaims it)."""
    if not url.startswith("sqlite"):
        size, tasks = store_size(url)
        return size, 0, tasks
    import sqlite3

    path = url.split("sqlite:///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        tasks = int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    wal = Path(path + "-wal").stat().st_size if Path(path + "-wal").exists() else 0
    return Path(path).stat().st_size + wal, wal, tasks


def vacuums(url: str) -> int | None:
    """PostgreSQL: how many times the schema's tables were vacuumed (by maintenance or autovacuum)."""
    if url.startswith("sqlite"):
        return None
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(vacuum_count + autovacuum_count), 0) FROM pg_stat_user_tables "
            "WHERE schemaname = %s",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def health(server: Server) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(server.base + "/api/health", timeout=30) as r:
        return dict(json.loads(r.read()))


def run(args: argparse.Namespace, run_no: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    tmp = tempfile.mkdtemp(prefix="stemtrace-retention-")
    if args.store:
        base, _, _ = args.store.partition("?")
        url = f"{base}?schema=ret_{tag}"
    else:
        url = f"sqlite:///{tmp}/retention.db"
    stream = f"retention.{tag}"
    os.environ["STEMTRACE_RETENTION"] = f"{args.retention:g}s"
    os.environ["STEMTRACE_FAILURE_RETENTION"] = f"{args.retention:g}s"
    server = Server(url, stream)
    fed = mp.Value("q", 0)
    fed_events = mp.Value("q", 0)
    start_at = time.time() + 3.0  # every feeder relabels its first copy before the clock starts
    cpus = [mp.Value("d", 0.0) for _ in range(args.feeders)]
    procs = [
        mp.Process(
            target=feeder,
            args=(
                i,
                args.feeders,
                args.rate,
                args.seconds,
                stream,
                start_at,
                args.recording,
                fed,
                fed_events,
                cpus[i],
            ),
        )
        for i in range(args.feeders)
    ]
    for p in procs:
        p.start()
    cpu0 = _proc_cpu(server.proc.pid)
    pg0 = postgres_cpu() if args.store else 0.0
    load0 = os.getloadavg()[0]
    time.sleep(max(0.0, start_at - time.time()))
    print(
        f"run {run_no}: {url.split('?')[0].split(':')[0]} store, {args.rate:,.0f} tasks/s "
        f"for {args.seconds:.0f} s, {args.feeders} feeders, retention {args.retention:.0f} s"
    )
    print("     t       fed    stored    backlog  expiry lag   size MB (WAL)  server CPU s")
    rows: list[dict[str, Any]] = []
    end = start_at + args.seconds + args.tail
    next_report = start_at + args.report
    while time.time() < end:
        time.sleep(max(0.0, next_report - time.time()))
        next_report += args.report
        now = time.time()
        h = health(server)
        size, wal, tasks = sizes(url)
        age = oldest_age(url, now)
        row = {
            "t": round(now - start_at),
            "fed": fed.value,
            "stored": tasks,
            "backlog_events": max(0, fed_events.value - int(h["ingest"]["events"])),
            "expiry_lag_s": round(max(0.0, age - args.retention), 1),
            "bytes": size,
            "wal_bytes": wal,
            "server_cpu_s": round(_proc_cpu(server.proc.pid) - cpu0, 1),
            "expired_workflows": h["retention"]["expired_workflows"],
        }
        rows.append(row)
        print(
            f"{row['t']:6}  {row['fed']:8,}  {tasks:8,}  {row['backlog_events']:9,}  "
            f"{row['expiry_lag_s']:8.1f} s  {size / 1e6:8.1f} ({wal / 1e6:5.1f})  "
            f"{row['server_cpu_s']:10.1f}",
            flush=True,
        )
    for p in procs:
        p.join(60)
    server_cpu = _proc_cpu(server.proc.pid) - cpu0
    pg_cpu = postgres_cpu() - pg0 if args.store else None
    ingested = int(health(server)["ingest"]["events"]) / PER_TASK
    load1 = os.getloadavg()[0]
    server.stop()
    final_bytes, _, final_tasks = sizes(url)
    vacuumed = vacuums(url)
    drop_store(url)
    steady = args.rate * (args.retention + 10.0)
    settled = [r for r in rows if args.retention + 20 <= r["t"] <= args.seconds]
    fed_rate = rows[-1]["fed"] / args.seconds if rows else 0.0
    result = {
        "bench": "retention",
        "run": run_no,
        "store": url.split("?")[0].split(":")[0],
        "target_tasks_per_s": args.rate,
        "fed_tasks_per_s": round(fed_rate),
        "retention_s": args.retention,
        "stored_steady_state": round(steady),
        "stored_max_settled": max((r["stored"] for r in settled), default=None),
        "stored_min_settled": min((r["stored"] for r in settled), default=None),
        "expiry_lag_max_s": max((r["expiry_lag_s"] for r in rows), default=None),
        "backlog_events_max": max((r["backlog_events"] for r in rows), default=None),
        "backlog_events_end_of_feed": next(
            (r["backlog_events"] for r in rows if r["t"] >= args.seconds), None
        ),
        "bytes_max": max((r["bytes"] for r in rows), default=0),
        "wal_bytes_max": max((r["wal_bytes"] for r in rows), default=0),
        "bytes_at_retention_plus_20": next((r["bytes"] for r in settled), None),
        "bytes_end": final_bytes,
        "tasks_end": final_tasks,
        "table_vacuums": vacuumed,
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_per_s": round(server_cpu / (args.seconds + args.tail), 2),
        "feeder_cpu_s": round(sum(c.value for c in cpus), 1),
        "postgres_cpu_s_all_clients": None if pg_cpu is None else round(pg_cpu, 1),
        "tasks_ingested": round(ingested),
        # Every task is ingested once and, a retention later, expired once: the server's CPU
        # per 1,000 tasks through both is what 1,000 tasks/s costs in cores, load or not.
        "server_cpu_s_per_1000_tasks": round(server_cpu / max(ingested / 1000, 1e-9), 3),
        "load_average_1m": [round(load0, 1), round(load1, 1)],
        "expired_workflows": rows[-1]["expired_workflows"] if rows else 0,
    }
    # Keeping up: the feed sustained, ingest no more than ~10 s of events behind when it ends,
    # expiry never more than one interval and one (bounded) round behind, and the stored
    # count plateauing near the steady state instead of growing with the run.
    result["ingest_keeps_up"] = (result["backlog_events_end_of_feed"] or 0) <= 10 * args.rate * PER_TASK
    result["retention_keeps_up"] = bool(
        result["expiry_lag_max_s"] is not None
        and result["expiry_lag_max_s"] <= 10.0 + args.slack
        and (result["stored_max_settled"] or 0) <= 1.25 * steady
    )
    result["keeps_up"] = bool(
        fed_rate >= 0.97 * args.rate and result["ingest_keeps_up"] and result["retention_keeps_up"]
    )
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="tasks per second, all feeders together")
    parser.add_argument("--seconds", type=float, default=240.0, help="how long to feed")
    parser.add_argument("--tail", type=float, default=10.0, help="seconds observed after the feed stops")
    parser.add_argument("--retention", type=float, default=60.0, help="seconds (failures' too)")
    parser.add_argument("--feeders", type=int, default=2, help="feeder processes")
    parser.add_argument("--report", type=float, default=10.0, help="seconds between report lines")
    parser.add_argument("--slack", type=float, default=10.0, help="seconds a round may take (keeps-up bound)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--store", default=None, help="postgresql://… (a fresh schema per run); default SQLite"
    )
    parser.add_argument("--recording", default=str(RECORDING))
    args = parser.parse_args()
    results = [run(args, i + 1) for i in range(args.runs)]
    if len(results) > 1:
        keys = (
            "fed_tasks_per_s",
            "stored_max_settled",
            "expiry_lag_max_s",
            "bytes_max",
            "bytes_end",
            "server_cpu_s",
        )
        summary = {k: [min(r[k] or 0 for r in results), max(r[k] or 0 for r in results)] for k in keys}
        print(
            json.dumps(
                {
                    "bench": "retention-summary",
                    "runs": len(results),
                    "ranges": summary,
                    "keeps_up": [r["keeps_up"] for r in results],
                }
            )
        )


if __name__ == "__main__":
    main()
