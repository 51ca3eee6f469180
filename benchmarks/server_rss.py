"""Peak RSS of a real ``stemtrace server`` process: ingesting into a big store, then serving.

``query.py`` measures a read-only process. This starts ``stemtrace server`` itself on an
existing store (fill one with ``query.py --tasks 1000000``), queues ``--events`` events of the
ingest benchmark's mix in a Redis stream, waits until the server has ingested them, then
sends API requests from ``--threads`` threads for ``--seconds`` (task lists with filters, task
details, the 10,000-task graphs ``query.py`` stores, workers). It prints the server's RSS and
peak RSS (``VmHWM``) after the ingest and after the requests. The store's rows are kept
(``--retention 3650d``), so run it on a copy if the store matters.

    python benchmarks/server_rss.py --store sqlite:////tmp/q1m.db [--events 200000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.ingest import Gen, messages  # noqa: E402

from stemtrace.transport import TransportConfig, resolve  # noqa: E402

PATHS = [
    "/api/tasks?limit=50",
    "/api/tasks?limit=500",
    "/api/tasks?limit=50&state=FAILURE",
    "/api/tasks?limit=50&name=proj.task_7",
    "/api/tasks?limit=50&q=user-4242",
    "/api/tasks?limit=50&since=2026-09-21T12:00:00Z&until=2026-09-22T00:00:00Z",
    "/api/workflows?limit=50",
    "/api/workers",
    "/api/workflows/h00000",
    "/api/workflows/spawner",
]


def memory(pid: int) -> dict[str, int]:
    """The process's ``VmRSS`` and ``VmHWM``, MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    config = TransportConfig(url=args.redis, name=f"bench.rss.{uuid.uuid4().hex[:8]}")
    publisher = resolve(config).publisher()
    payloads = messages(Gen(3).stream(args.events))
    for i in range(0, len(payloads), 100):
        publisher.send(payloads[i : i + 100])
    publisher.close()
    server = subprocess.Popen(
        [
            *(sys.executable, "-c", "from stemtrace.cli import main; main()", "server"),
            *("--store", args.store, "--port", str(args.port)),
            *("--events-url", args.redis, "--events-name", config.name),
            *("--retention", "3650d", "--failure-retention", "3650d"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"

    def get(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            return json.loads(response.read())

    try:
        for _ in range(200):
            try:
                get("/api/health")
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"stemtrace server exited with {server.returncode}") from None
                time.sleep(0.25)
        started = time.perf_counter()
        while get("/api/health")["ingest"]["events"] < args.events:
            time.sleep(0.25)
        took = time.perf_counter() - started
        report("ingested", server.pid, events=args.events, seconds=round(took, 1))
        ids = [item["id"] for item in get("/api/tasks?limit=200")["items"]]
        stop = time.monotonic() + args.seconds
        counts = [0] * args.threads

        def client(n: int) -> None:
            rnd = random.Random(n)
            while time.monotonic() < stop:
                get(rnd.choice([*PATHS, *[f"/api/tasks/{rnd.choice(ids)}"] * 3]))
                counts[n] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report("served", server.pid, threads=args.threads, requests=sum(counts))
    finally:
        server.terminate()
        server.wait(30)
        import redis

        redis.Redis.from_url(args.redis).delete(config.name)


def report(phase: str, pid: int, **extra: Any) -> None:
    mem = memory(pid)
    figures = {"rss_mb": mem["VmRSS"], "peak_mb": mem["VmHWM"]}
    print(json.dumps({"bench": "server_rss", "phase": phase, **extra, **figures}))


if __name__ == "__main__":
    main()
