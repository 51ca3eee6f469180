"""Every endpoint's latency over real HTTP on a store filled from a real recording.

Runs ``stemtrace server --no-ingest`` on a store filled by ``benchmarks/replay.py --fill N
--keep`` (relabelled copies of a recording spread over the last ~6 days, plus the replayed
copies of "now"), then requests every read endpoint with 1 and with 20 concurrent clients
(threads, each with its own keep-alive connection) and prints p50/p95 per case. Searches look
for OLD tasks (the oldest the store holds: older than 5.5 days if any) and NEW ones, by task-id
prefix, full id and argument text, and report whether the task was on the first page: a search
that answers fast but misses the task is a failure too.

    PYTHONPATH=src:. python benchmarks/replay.py /tmp/rec.jsonl.gz --store sqlite:////tmp/r1m.db \
        --fill 1000000 --keep --runs 1
    PYTHONPATH=src:. python benchmarks/query_real.py --store sqlite:////tmp/r1m.db

``--ingest`` runs the server as deployed instead (ingest on, subscribed to a fresh Redis stream
of its own, removed at the end): ``/api/health`` and ``/metrics`` then also report the
ingest loop and the broker's subscriptions, as they do in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import redis

from replay import REDIS, _free_port, _proc


def iso(days_ago: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ReadServer:
    """``stemtrace server --no-ingest`` on the store: the API and nothing else; with ``ingest``,
    the server as deployed, consuming a fresh stream of its own (``--events-name``)."""

    def __init__(self, store: str, *, ingest: bool = False) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.stream = f"query-real-{uuid.uuid4().hex[:8]}" if ingest else None
        cmd = [sys.executable, "-c", "from stemtrace.cli import main; main()", "server"]
        cmd += ["--events-name", self.stream] if self.stream else ["--no-ingest"]
        cmd += ["--broker", REDIS, "--store", store, "--port", str(port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/api/health", timeout=60).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode()[-3000:] if self.proc.stderr else "")
            time.sleep(0.5)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        if self.stream is not None:
            redis.Redis.from_url(REDIS).delete(self.stream)  # its consumer groups go with it


def cases(c: httpx.Client) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(label, path, params, id expected on the first page) for every endpoint and search."""
    names = c.get("/api/task-names").json()
    names = names.get("names", names) if isinstance(names, dict) else names
    name = next((n if isinstance(n, str) else n.get("name") for n in names), "t.add")
    newest = c.get("/api/tasks", params={"limit": 50}).json()
    # The oldest tasks the store holds: those older than the first of these ages that has any.
    old_age, oldest = 0.0, {"items": []}
    for old_age in (5.5, 4.0, 2.0, 1.0):
        oldest = c.get("/api/tasks", params={"limit": 50, "until": iso(old_age)}).json()
        if oldest["items"]:
            break
    new_task = newest["items"][5]
    old_task = oldest["items"][-1] if oldest["items"] else None
    worker = new_task.get("worker") or ""
    # Cursors 1 and 100 pages deep (50 rows a page).
    cursor, deep = newest["next_cursor"], None
    page = newest
    for _ in range(99):
        if not page.get("next_cursor"):
            break
        page = c.get("/api/tasks", params={"limit": 50, "cursor": page["next_cursor"]}).json()
    deep = page.get("next_cursor")
    echo_new = c.get("/api/tasks", params={"limit": 50, "name": "t.echo"}).json()["items"]
    echo_old = c.get("/api/tasks", params={"limit": 50, "name": "t.echo", "until": iso(old_age)}).json()[
        "items"
    ]

    def arg_text(task: dict[str, Any]) -> str | None:
        detail = c.get(f"/api/tasks/{task['id']}").json()
        text = json.dumps(detail.get("args"))
        start = text.find("order-")
        return text[start : text.find("-user", start)] + "-" if start >= 0 else None

    wf = c.get("/api/workflows", params={"limit": 50}).json()["items"]
    wf_id = next((w["id"] for w in wf if (w.get("tasks") or w.get("task_count") or 0) > 20), wf[0]["id"])
    out: list[tuple[str, str, dict[str, Any], str | None]] = [
        ("task list, newest 50", "/api/tasks", {"limit": 50}, None),
        ("task list, 500 rows", "/api/tasks", {"limit": 500}, None),
        ("task list, page 2", "/api/tasks", {"limit": 50, "cursor": cursor}, None),
        ("task list, page 101", "/api/tasks", {"limit": 50, "cursor": deep}, None),
        ("filter name", "/api/tasks", {"limit": 50, "name": name}, None),
        ("filter state FAILURE", "/api/tasks", {"limit": 50, "state": "FAILURE"}, None),
        (
            "filter state RETRY+FAILURE, name",
            "/api/tasks",
            {"limit": 50, "state": ["RETRY", "FAILURE"], "name": "t.flaky"},
            None,
        ),
        (
            "filter worker+name+state",
            "/api/tasks",
            {"limit": 50, "worker": worker, "name": "t.fail", "state": "FAILURE"},
            None,
        ),
        ("filter exception_type", "/api/tasks", {"limit": 50, "exception_type": "ValueError"}, None),
        (
            "filter time range (1 h, 3 days ago)",
            "/api/tasks",
            {"limit": 50, "since": iso(3.05), "until": iso(3)},
            None,
        ),
        ("q= id prefix 8, NEW task", "/api/tasks", {"limit": 50, "q": new_task["id"][:8]}, new_task["id"]),
        ("q= no match", "/api/tasks", {"limit": 50, "q": "no-such-text-anywhere"}, None),
        ("workflows, newest 50", "/api/workflows", {"limit": 50}, None),
        ("workflows, FAILURE", "/api/workflows", {"limit": 50, "state": "FAILURE"}, None),
        ("workflow graph", f"/api/workflows/{wf_id}", {}, None),
        ("task detail", f"/api/tasks/{new_task['id']}", {}, None),
        ("failures, 1 h", "/api/failures", {"since": iso(1 / 24)}, None),
        ("failures, 7 days", "/api/failures", {"since": iso(7)}, None),
        ("stuck", "/api/stuck", {}, None),
        ("task-names", "/api/task-names", {}, None),
        ("stats, 7 days", "/api/stats/tasks", {"since": iso(7)}, None),
        ("stats, 1 h", "/api/stats/tasks", {"since": iso(1 / 24)}, None),
        ("workers", "/api/workers", {}, None),
        ("health", "/api/health", {}, None),
        ("metrics", "/metrics", {}, None),
    ]
    if old_task is not None:
        old = f"OLD task (> {old_age:g} days)"
        out.append(
            (f"q= id prefix 8, {old}", "/api/tasks", {"limit": 50, "q": old_task["id"][:8]}, old_task["id"])
        )
        out.append((f"q= full id, {old}", "/api/tasks", {"limit": 50, "q": old_task["id"]}, old_task["id"]))
    for label, tasks in (("NEW", echo_new), (f"OLD (> {old_age:g} days)", echo_old)):
        if tasks:
            text = arg_text(tasks[-1])
            if text:
                out.append(
                    (
                        f"q= argument text, {label} task",
                        "/api/tasks",
                        {"limit": 50, "q": text},
                        tasks[-1]["id"],
                    )
                )
    return out


def measure(
    base: str, path: str, params: dict[str, Any], *, clients: int, per_client: int, budget_s: float
) -> dict[str, Any]:
    """p50/p95 of ``clients`` threads each requesting ``per_client`` times (within ``budget_s``)."""
    deadline = time.monotonic() + budget_s
    samples: list[float] = []
    statuses: set[int] = set()
    lock = threading.Lock()
    url = path + ("?" + urlencode(params, doseq=True) if params else "")

    def run() -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            mine = []
            for i in range(per_client):
                if i and time.monotonic() > deadline:
                    break  # a slow case: enough samples within the budget
                t = time.perf_counter()
                r = c.get(url)
                mine.append((time.perf_counter() - t) * 1000)
                statuses.add(r.status_code)
            with lock:
                samples.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples.sort()
    return {
        "status": sorted(statuses),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[math.ceil(0.95 * len(samples)) - 1], 1),  # nearest rank
        "n": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", required=True)
    parser.add_argument("--runs", type=int, default=20, help="requests per case with one client")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--per-client", type=int, default=5, help="requests per client when concurrent")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds per case, once each client has one"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="only the cases whose label starts with one of these"
    )
    parser.add_argument(
        "--ingest", action="store_true", help="ingest on, from a fresh Redis stream (as deployed)"
    )
    args = parser.parse_args()
    server = ReadServer(args.store, ingest=args.ingest)
    try:
        with httpx.Client(base_url=server.base, timeout=120) as c:
            found = cases(c)
            if args.only:
                found = [case for case in found if case[0].startswith(tuple(args.only))]
            for label, path, params, want in found:
                hit = None
                if want is not None:
                    items = c.get(path, params=params).json().get("items", [])
                    hit = any(t["id"] == want for t in items)
                for clients in args.clients:
                    per = args.runs if clients == 1 else args.per_client
                    cpu0 = _proc(server.proc.pid)[0]
                    result = measure(
                        server.base, path, params, clients=clients, per_client=per, budget_s=args.budget
                    )
                    # The server's CPU per request (its ingest process included): beside the wall
                    # time, what a loaded host does not inflate.
                    result["server_cpu_ms"] = round(
                        (_proc(server.proc.pid)[0] - cpu0) * 1000 / result["n"], 1
                    )
                    row = {"bench": "query_real", "case": label, "clients": clients, **result}
                    if hit is not None:
                        row["found_on_first_page"] = hit
                    print(json.dumps(row), flush=True)
        _, hwm = _proc(server.proc.pid)
        print(json.dumps({"bench": "query_real_rss", "peak_rss_mb": round(hwm, 1), "pid": os.getpid()}))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
