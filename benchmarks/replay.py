"""Replay a recorded real workload (``benchmarks/record.py``) through a real ``stemtrace server``.

Each run publishes the recording's payloads onto a fresh Redis stream in their recorded order
(the recorded backlog is kept: a task's ``received``/``started``/``succeeded`` come thousands of
events after its ``published``), with every id relabelled and timestamps moved to now, so no
run repeats another's tasks. A ``stemtrace server`` subprocess consumes the stream, exactly as
in production, into the store; the run ends when ``/api/health`` counts every event. Reported
per run: events/s (wall), events per CPU-second of the server process, the server's peak RSS
(``VmHWM``) and, into an empty store, the store's bytes per task.

``--best-case`` alternates each realistic run with one of ``benchmarks/ingest.py``'s generated
stream (each task's events within ~200 of each other) through the same server, so the two
figures of the same run can be compared. ``--fill N`` first fills the store to N tasks by
writing the recording repeatedly through ``Store.prepare``/``apply_begin`` (the ingest loop's
write path, without the transport), each copy relabelled and moved further into the past (over
the last ~6 days), so old and new tasks both exist; its events per CPU-second count every thread
of the process (the commit thread's inserts too) but not the benchmark's own relabelling, and it
reports the ingest thread's share (``main_thread_cpu_s``). ``--decode`` measures the JSON decoding of
the recording with the fast-path check before and after the 64-bit fix.

    PYTHONPATH=src:. python benchmarks/replay.py /tmp/rec.jsonl.gz --runs 3 --best-case
    PYTHONPATH=src:. python benchmarks/replay.py /tmp/rec.jsonl.gz --store 'postgresql://postgres@127.0.0.1/test?schema=replay'
    PYTHONPATH=src:. python benchmarks/replay.py /tmp/rec.jsonl.gz --store sqlite:////tmp/r1m.db \
        --fill 1000000 --keep
    PYTHONPATH=src:. python benchmarks/replay.py /tmp/rec.jsonl.gz --decode
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from record import load

REDIS = "redis://127.0.0.1:6379/0"
DAY_NS = 86_400 * 10**9
# What relabelling rewrites: task/group ids (UUIDs), process instance ids (32 hex digits),
# timestamps in nanoseconds (rows) and in seconds (floats in data), and the recorder's
# searchable argument text (``order-<n>``), so a search can tell one copy from another.
_LABELS = re.compile(
    rb"order-\d+|"
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"
    rb"|(?<![\d.])1[6-9]\d{17}(?![\d.])"
    rb"|(?<![\d.])1[6-9]\d{8}\.\d+(?![\d.])"
)


class Relabel:
    """Rewrites one copy of the recording: new ids (stable within the copy), shifted times."""

    def __init__(self, copy: str, shift_ns: int) -> None:
        self.copy = copy.encode()
        self.shift_ns = shift_ns
        self.ids: dict[bytes, bytes] = {}

    def _new_id(self, old: bytes) -> bytes:
        new = self.ids.get(old)
        if new is None:
            digest = hashlib.blake2b(old + self.copy, digest_size=16).hexdigest().encode()
            if len(old) == 36:
                new = b"-".join((digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:]))
            else:
                new = digest
            self.ids[old] = new
        return new

    def _sub(self, match: re.Match[bytes]) -> bytes:
        text = match.group()
        if text.startswith(b"order-"):
            return b"order-" + self.copy + b"." + text[6:]
        if len(text) == 19 and text.isdigit():
            return str(int(text) + self.shift_ns).encode()
        if b"." in text:
            return repr(float(text) + self.shift_ns / 1e9).encode()
        return self._new_id(text)

    def __call__(self, payload: bytes) -> bytes:
        return _LABELS.sub(self._sub, payload)


def first_ns(payloads: list[bytes]) -> int:
    """The recording's earliest nanosecond timestamp."""
    found = [int(m) for p in payloads[:50] for m in re.findall(rb"(?<![\d.])1[6-9]\d{17}(?![\d.])", p)]
    return min(found)


def count_events(payloads: list[bytes]) -> int:
    from stemtrace.server.jsonfast import decode_payload

    return sum(len(decode_payload(p)[0]) + len(decode_payload(p)[1]) for p in payloads)


# -- the server under test --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the ingest process of ``--ingest-process separate``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def _proc(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of a process and its children, from /proc: CPU summed,
    peak RSS the sum of each process's peak (an upper bound of their peak together)."""
    cpu = hwm = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue  # ended meanwhile
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                hwm += int(line.split()[1]) / 1024
    return cpu, hwm


def _peaks(pid: int) -> dict[str, float]:
    """Each process's peak RSS in MB, by its role (the server, its ingest process, helpers)."""
    out: dict[str, float] = {}
    for p in _tree(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        role = "server" if p == pid else "ingest" if b"spawn_main" in cmd else f"other-{p}"
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                out[role] = round(int(line.split()[1]) / 1024, 1)
    return out


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


# What a Tasks/Workflows page and a health check ask, in turn (benchmarks/query_real.py has all).
CLIENT_PATHS = (
    "/api/tasks?limit=50",
    "/api/workflows?limit=50",
    "/api/health",
    "/api/tasks?limit=50&state=FAILURE",
    "/api/workers",
    "/api/task-names",
)


class Clients:
    """``n`` API clients during a replay, each with its own keep-alive connection: a request,
    then ``pause`` seconds (a UI page refreshing), over ``CLIENT_PATHS`` in turn."""

    def __init__(self, base: str, n: int, pause: float) -> None:
        self.base, self.n, self.pause = base, n, pause
        self.samples: list[float] = []
        self.by_path: dict[str, list[float]] = {}  # the same samples, per path
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self, i: int) -> None:
        import httpx

        mine: list[tuple[str, float]] = []
        with httpx.Client(base_url=self.base, timeout=60) as c:
            k = i
            while not self._stop.is_set():
                path = CLIENT_PATHS[k % len(CLIENT_PATHS)]
                started = time.perf_counter()
                try:
                    ok = c.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append((path, (time.perf_counter() - started) * 1000))
                if not ok:
                    self.errors += 1
                k += 1
                self._stop.wait(self.pause)
        with self._lock:
            self.samples.extend(ms for _, ms in mine)
            for path, ms in mine:
                self.by_path.setdefault(path, []).append(ms)

    def summary(self) -> dict[str, Any]:
        done = sorted(self.samples)
        if not done:
            return {"clients": self.n, "requests": 0}
        return {
            "clients": self.n,
            "requests": len(done),
            "errors": self.errors,
            "p50_ms": round(statistics.median(done), 1),
            "p95_ms": round(done[math.ceil(0.95 * len(done)) - 1], 1),
            "by_path": {path: _percentiles(ms) for path, ms in sorted(self.by_path.items())},
        }


def _percentiles(samples: list[float]) -> dict[str, float]:
    done = sorted(samples)
    return {
        "n": len(done),
        "p50_ms": round(statistics.median(done), 1),
        "p95_ms": round(done[math.ceil(0.95 * len(done)) - 1], 1),
    }


class Server:
    """``stemtrace server`` on a fresh stream; ``ingest(payloads)`` times the catch-up."""

    def __init__(self, store: str, stream: str, extra: tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.stream = stream
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-c", "from stemtrace.cli import main; main()", "server"]
        cmd += [
            "--broker",
            REDIS,
            "--events-name",
            stream,
            "--store",
            store,
            "--port",
            str(self.port),
            *extra,
        ]
        # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
        self.log = tempfile.NamedTemporaryFile(prefix="replay-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        self.stalled = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if _get(self.base + "/api/health")["ingest"]["status"] == "ok":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-3000:])
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def ingest(
        self, payloads: list[bytes], events: int, clients: int = 0, pause: float = 1.0
    ) -> dict[str, Any]:
        with Clients(self.base, clients, pause) as readers:
            out = self._ingest(payloads, events)
        if clients:
            out["api"] = readers.summary()
        return out

    def _ingest(self, payloads: list[bytes], events: int) -> dict[str, Any]:
        from stemtrace.transport import TransportConfig, resolve

        config = TransportConfig(url=REDIS, name=self.stream, max_length=len(payloads) + 1000)
        cpu0, _ = _proc(self.proc.pid)
        started = time.perf_counter()
        publisher = resolve(config).publisher()
        for i in range(0, len(payloads), 500):
            publisher.send(payloads[i : i + 500])
        publisher.close()
        published = time.perf_counter() - started
        seen, last_change, last = 0, time.monotonic(), -1
        while seen < events:
            time.sleep(0.1)
            seen = int(_get(self.base + "/api/health")["ingest"]["events"])
            if seen != last:
                last, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > 60:
                # Stalled: report what was ingested, and what the server said about it.
                health = _get(self.base + "/api/health")
                print(json.dumps({"stalled": seen, "health": health, "log": self.log.name}), flush=True)
                self.stalled = True
                break
        wall = time.perf_counter() - started
        cpu1, hwm = _proc(self.proc.pid)
        return {
            "events": seen,
            "publish_s": round(published, 2),
            "seconds": round(wall, 2),
            "events_per_s": round(seen / wall),
            "cpu_seconds": round(cpu1 - cpu0, 2),
            "events_per_cpu_s": round(seen / max(cpu1 - cpu0, 1e-9)),
            "peak_rss_mb": round(hwm, 1),
            "peak_rss_mb_by_process": _peaks(self.proc.pid),
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if not self.stalled:  # a stalled run's log is kept (its path was printed)
            Path(self.log.name).unlink(missing_ok=True)
        import redis

        redis.Redis.from_url(REDIS).delete(self.stream)


# -- stores -------------------------------------------------------------------------------------


def fresh_store(base: str, tag: str) -> str:
    """A new empty store next to ``base``: another SQLite file, or another PostgreSQL schema."""
    if base.startswith("sqlite"):
        path = Path(base.split("sqlite:///", 1)[1])
        return f"sqlite:///{path.with_name(f'{path.stem}-{tag}{path.suffix}')}"
    url, _, _ = base.partition("?")
    return f"{url}?schema=replay_{tag}"


def drop_store(url: str) -> None:
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def store_size(url: str) -> tuple[int, int]:
    """(bytes on disk, tasks) of a store."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("sqlite:///", 1)[1]
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the log is transient: count the store
            tasks = int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        size = sum(Path(path + s).stat().st_size for s in ("", "-wal") if Path(path + s).exists())
        return size, tasks
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        size = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchone()
        tasks = conn.execute(f'SELECT COUNT(*) FROM "{schema}".tasks').fetchone()
    return int(size[0] if size else 0), int(tasks[0] if tasks else 0)


def fill(url: str, payloads: list[bytes], tasks_per_copy: int, target: int, batch: int) -> None:
    """Write relabelled copies of the recording, the oldest ~6 days back, until ``target`` tasks."""
    from stemtrace.server.jsonfast import decode_payload
    from stemtrace.server.store import open_store

    copies = max(1, -(-target // tasks_per_copy))
    now_ns = time.time_ns()
    base = first_ns(payloads)
    store = open_store(url)
    started, cpu0, main0 = time.perf_counter(), time.process_time(), time.thread_time()
    events, pending, total = [], None, 0
    relabelling = 0.0  # the benchmark's own CPU (this thread's), left out of the server's figure
    for copy in range(copies):
        # Copy 0 is the oldest; the newest ends an hour before the replays' "now".
        shift = now_ns - base - 3600 * 10**9 - (copies - 1 - copy) * (6 * DAY_NS // copies)
        relabel = Relabel(f"fill{copy}", shift)
        for p in payloads:
            r0 = time.thread_time()
            payload = relabel(p)
            relabelling += time.thread_time() - r0
            events.extend(decode_payload(payload)[0])
            if len(events) >= batch:
                prepared = store.prepare(events)
                if pending is not None:
                    pending.result()
                pending = store.apply_begin(events, {}, time.time(), prepared=prepared)
                total += len(events)
                events = []
        if copy % 5 == 4 or copy == copies - 1:
            print(json.dumps({"fill_copy": copy + 1, "of": copies, "events": total}), flush=True)
    if events:
        if pending is not None:
            pending.result()
        pending = store.apply_begin(events, {}, time.time())
        total += len(events)
    if pending is not None:
        pending.result()
    cpu = time.process_time() - cpu0 - relabelling  # every thread's: the commit thread's too
    main_cpu = time.thread_time() - main0 - relabelling
    store.close()
    took = time.perf_counter() - started
    size, tasks = store_size(url)
    print(
        json.dumps(
            {
                "bench": "fill",
                "store": url,
                "tasks": tasks,
                "events": total,
                "seconds": round(took, 1),
                "events_per_s": round(total / took),
                "events_per_cpu_s": round(total / cpu),
                "cpu_s": round(cpu, 2),
                "main_thread_cpu_s": round(main_cpu, 2),
                "relabel_cpu_s": round(relabelling, 2),
                "bytes": size,
                "bytes_per_task": round(size / max(tasks, 1)),
            }
        ),
        flush=True,
    )


# -- the runs -----------------------------------------------------------------------------------


def best_case(events: int, seed: int) -> list[bytes]:
    """``benchmarks/ingest.py``'s generated stream, its clock moved to the last hour."""
    from ingest import Gen, messages

    gen = Gen(seed)
    gen.t = time.time() - 3600
    return messages(gen.stream(events))


def replay(args: argparse.Namespace, payloads: list[bytes], meta: dict[str, Any]) -> None:
    events = count_events(payloads) * args.copies
    base = first_ns(payloads)

    def realistic(run: int) -> tuple[list[bytes], int]:
        # ``--copies``: the recording again and again, each copy its own tasks, one backlog.
        out: list[bytes] = []
        for copy in range(args.copies):
            out.extend(map(Relabel(f"run{run}.{copy}", time.time_ns() - base), payloads))
        return out, events

    kinds: list[tuple[str, Callable[[int], tuple[list[bytes], int]]]] = [("realistic", realistic)]
    if args.best_case:

        def generated(run: int) -> tuple[list[bytes], int]:
            out = best_case(events, 100 + run)
            return out, count_events(out)

        kinds.append(("best_case", generated))
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind, _ in kinds}
    print(json.dumps({"recording": {k: meta.get(k) for k in ("tasks", "events", "celery", "backlog")}}))
    for run in range(args.runs):
        # With --clients, runs alternate without and with the readers (best case: none).
        clients = args.clients if args.clients and run % 2 == 1 else 0
        for kind, make in kinds:  # alternate the kinds, run by run
            batch, n = make(run)
            url = args.store if args.fill or args.prefilled else fresh_store(args.store, uuid.uuid4().hex[:8])
            before = store_size(url) if args.fill or args.prefilled else (0, 0)
            extra = ("--ingest-process", args.ingest_process) if args.ingest_process else ()
            server = Server(url, f"replay.{uuid.uuid4().hex[:8]}", extra)
            try:
                result = server.ingest(batch, n, clients, args.client_pause)
            finally:
                server.stop()
            size, tasks = store_size(url)
            label = f"{kind}+{clients}clients" if args.clients else kind
            result = {"bench": "replay", "kind": label, "run": run + 1, "store_tasks": tasks, **result}
            if not (args.fill or args.prefilled):
                result["bytes_per_task"] = round(size / max(tasks, 1))
                drop_store(url)
            else:
                result["added_bytes_per_task"] = round((size - before[0]) / max(tasks - before[1], 1))
            results.setdefault(label, []).append(result)
            print(json.dumps(result), flush=True)
    for kind, runs in results.items():
        if not runs:
            continue
        rates = [r["events_per_s"] for r in runs]
        cpu_rates = [r["events_per_cpu_s"] for r in runs]
        print(
            json.dumps(
                {
                    "bench": "replay-summary",
                    "kind": kind,
                    "store": args.store.split("?")[0].split("://")[0],
                    "prefilled": bool(args.fill or args.prefilled),
                    "runs": len(runs),
                    "events_per_s_median": round(statistics.median(rates)),
                    "events_per_s_range": [min(rates), max(rates)],
                    "events_per_cpu_s_median": round(statistics.median(cpu_rates)),
                    "events_per_cpu_s_range": [min(cpu_rates), max(cpu_rates)],
                    "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
                    **(
                        {"api_p95_ms": [r["api"].get("p95_ms") for r in runs]}
                        if any("api" in r for r in runs)
                        else {}
                    ),
                }
            ),
            flush=True,
        )


def decode_bench(payloads: list[bytes], rounds: int) -> None:
    """CPU seconds per 100,000 events to decode the recording, fast-path check before/after."""
    import orjson

    from stemtrace.server import jsonfast

    relabelled = list(map(Relabel("decode", 0), payloads))
    events = count_events(relabelled)
    digits, long_run = bytes.maketrans(b"123456789", b"000000000"), b"0" * 19

    def loads_before(text: bytes) -> Any:  # the check before the fix: any 19-digit run -> json
        if long_run not in text.translate(digits):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
        return json.loads(text, parse_constant=jsonfast.NonFinite, parse_float=jsonfast._float)

    def decode_before(p: bytes) -> Any:
        return jsonfast.decode_items(loads_before(p))

    slow = sum(1 for p in relabelled if long_run in p.translate(digits))
    slow_after = sum(1 for p in relabelled if not jsonfast._bytes_exact(p))
    print(json.dumps({"payloads": len(payloads), "json_path_before": slow, "json_path_after": slow_after}))
    samples: dict[str, list[float]] = {"before": [], "after": [], "parse before": [], "parse after": []}
    for _ in range(rounds):
        for label, fn in (
            ("before", decode_before),
            ("after", jsonfast.decode_payload),
            ("parse before", loads_before),
            ("parse after", jsonfast.loads),
        ):
            cpu0 = time.process_time()
            for p in relabelled:
                fn(p)
            samples[label].append((time.process_time() - cpu0) * 100_000 / events)
    for label, values in samples.items():
        print(
            json.dumps(
                {
                    "bench": "decode",
                    "check": label,
                    "events": events,
                    "cpu_s_per_100k_events_median": round(statistics.median(values), 3),
                    "range": [round(min(values), 3), round(max(values), 3)],
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recording")
    parser.add_argument("--store", default="sqlite:////tmp/stemtrace-replay.db")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--best-case", action="store_true", help="alternate with ingest.py's generated stream"
    )
    parser.add_argument("--fill", type=int, default=0, help="first fill --store to this many tasks")
    parser.add_argument("--fill-batch", type=int, default=20_000, help="events per fill transaction")
    parser.add_argument("--prefilled", action="store_true", help="--store is already filled: replay into it")
    parser.add_argument(
        "--keep", action="store_true", help="keep the filled store (for benchmarks/query_real.py)"
    )
    parser.add_argument("--decode", action="store_true", help="only measure decoding, before/after the fix")
    parser.add_argument(
        "--ingest-process", choices=("auto", "same", "separate"), help="the server's --ingest-process"
    )
    parser.add_argument("--no-replay", action="store_true", help="only fill")
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="replay this many relabelled copies back to back (a bigger backlog)",
    )
    parser.add_argument(
        "--clients", type=int, default=0, help="API clients during every other run (0, N, 0, N, ...)"
    )
    parser.add_argument(
        "--client-pause", type=float, default=1.0, help="each client's pause between requests (s)"
    )
    args = parser.parse_args()
    meta, payloads = load(args.recording)
    if args.decode:
        decode_bench(payloads, args.runs)
        return
    if args.fill:
        fill(args.store, payloads, int(meta["tasks"]), args.fill, args.fill_batch)
    try:
        if not args.no_replay:
            replay(args, payloads, meta)
    finally:
        if (args.fill or args.prefilled) and not args.keep:
            drop_store(args.store)


if __name__ == "__main__":
    main()
