"""Time-to-interactive of a 10,000-task workflow in headless Chromium.

Measures, from navigation start, how long until the workflow page has its ELK layout drawn, the
Gantt timeline rendered and a click on a timeline bar opens the task panel. Reported as the median
of several cold runs (a fresh browser context each time).

By default the UI is served from ``src/stemtrace/server/static`` by a small stand-in server that
answers the API with a synthetic workflow (50 chord stages of 198 tasks, one stage failing half-way,
later stages PLANNED, plus spawned children): this measures the UI alone. ``--url`` and
``--workflow`` point it at a real stemtrace server instead.

    .venv/bin/python benchmarks/ui_workflow.py [--runs 5] [--url http://127.0.0.1:7373 --workflow ID]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "src" / "stemtrace" / "server" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; worker-src 'self' blob:"
)
WORKFLOW_ID = "wf-bench-root"


def synthetic_workflow(stages: int = 50, width: int = 198, spawned: int = 49) -> dict[str, Any]:
    """A chain of chords: root → chord(width items → cb1) → chord(... → cb2) → …; one stage fails."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def iso(ms: float) -> str:
        return (t0 + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")

    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    groups: list[dict[str, Any]] = []
    counts: dict[str, int] = {}

    def add(
        node_id: str, name: str, state: str, parent: str | None, start: float | None, **extra: Any
    ) -> None:
        ran = start is not None and state not in ("PLANNED", "SKIPPED")
        node = {
            "id": node_id,
            "name": name,
            "state": state,
            "attempts": extra.pop("attempts", 1 if ran else 0),
            "worker": f"worker{hash(node_id) % 4}@bench" if ran else None,
            "queue": "celery",
            "sent_at": iso(start) if ran else None,
            "received_at": iso(start + 1) if ran else None,
            "started_at": iso(start + 5) if ran else None,
            "finished_at": iso(start + 40) if ran else None,
            "runtime_ms": 35.0 if ran else None,
            "exception_type": None,
            "parent_id": parent,
            "group_id": None,
            "group_index": None,
            "plumbing": False,
        }
        node.update(extra)
        nodes.append(node)
        counts[state] = counts.get(state, 0) + 1

    add(WORKFLOW_ID, "bench.tasks.start", "SUCCESS", None, 0.0)
    previous = WORKFLOW_ID
    failed_stage = stages * 3 // 5
    clock = 50.0
    for s in range(stages):
        gid = f"g{s}"
        cb = f"cb{s}"
        members = []
        stage_state = "SUCCESS" if s < failed_stage else ("MIXED" if s == failed_stage else "PLANNED")
        for i in range(width):
            mid = f"s{s}-i{i}"
            members.append(mid)
            state = "SUCCESS"
            extra: dict[str, Any] = {}
            if stage_state == "PLANNED":
                state = "PLANNED"
            elif stage_state == "MIXED" and i >= width // 2:
                state = "FAILURE" if i % 7 == 0 else "SUCCESS"
                if state == "FAILURE":
                    extra = {"exception_type": "ValueError", "attempts": 3}
            add(
                mid,
                "bench.tasks.process_item",
                state,
                previous,
                None if state == "PLANNED" else clock + i * 0.5,
                group_id=gid,
                group_index=i,
                **extra,
            )
            edges.append({"source": previous, "target": mid, "kind": "chain"})
            edges.append({"source": mid, "target": cb, "kind": "chord"})
        cb_state = "SUCCESS" if stage_state == "SUCCESS" else "PLANNED"
        add(cb, "bench.tasks.aggregate", cb_state, previous, None if cb_state == "PLANNED" else clock + width)
        groups.append({"id": gid, "kind": "chord", "members": members, "callback": cb})
        previous = cb
        clock += width + 60
    for k in range(spawned):
        kid = f"spawn-{k}"
        add(kid, "bench.tasks.notify", "SUCCESS", WORKFLOW_ID, 10.0 + k)
        edges.append({"source": WORKFLOW_ID, "target": kid, "kind": "spawn"})
    return {
        "id": WORKFLOW_ID,
        "name": "bench.tasks.start",
        "root_id": WORKFLOW_ID,
        "state": "FAILURE",
        "task_count": len(nodes),
        "counts": counts,
        "started_at": iso(0),
        "finished_at": None,
        "nodes": nodes,
        "edges": edges,
        "groups": groups,
    }


def task_detail(node: dict[str, Any]) -> dict[str, Any]:
    return {
        **{
            k: node.get(k)
            for k in (
                "id",
                "name",
                "state",
                "parent_id",
                "group_id",
                "group_index",
                "worker",
                "queue",
                "sent_at",
                "received_at",
                "started_at",
                "finished_at",
                "runtime_ms",
                "exception_type",
            )
        },
        "workflow_id": WORKFLOW_ID,
        "root_id": WORKFLOW_ID,
        "retries": 0,
        "args_preview": "[1]",
        "names": [node["name"]],
        "args": [1],
        "kwargs": {},
        "result": None,
        "exception": None,
        "traceback": None,
        "attempts": [],
        "events": [],
        "children": [],
    }


class StandIn(BaseHTTPRequestHandler):
    """Serves the built UI (SPA fallback, CSP, root meta) and a synthetic API."""

    workflow_body = b""
    by_id: dict[str, dict[str, Any]] = {}

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/"):
            self._api(path)
            return
        target = (STATIC / path.lstrip("/")).resolve()
        if path != "/" and target.is_file() and STATIC.resolve() in target.parents:
            ctype = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}.get(
                target.suffix, "application/octet-stream"
            )
            self._send(200, target.read_bytes(), ctype)
            return
        html = (
            (STATIC / "index.html")
            .read_text()
            .replace("<head>", '<head><base href="/"><meta name="stemtrace-root" content="">', 1)
        )
        self._send(200, html.encode(), "text/html; charset=utf-8")

    def _api(self, path: str) -> None:
        if path == f"/api/workflows/{WORKFLOW_ID}":
            self._send(200, self.workflow_body, "application/json")
        elif path.startswith("/api/tasks/") and path.rsplit("/", 1)[1] in self.by_id:
            self._send(
                200, json.dumps(task_detail(self.by_id[path.rsplit("/", 1)[1]])).encode(), "application/json"
            )
        elif path == "/api/stream":
            self._send(
                503, b'{"error":{"status":503,"message":"no stream in the stand-in"}}', "application/json"
            )
        else:
            self._send(200, b'{"items":[],"next_cursor":null}', "application/json")


def start_stand_in() -> tuple[ThreadingHTTPServer, str]:
    wf = synthetic_workflow()
    StandIn.workflow_body = json.dumps(wf).encode()
    StandIn.by_id = {n["id"]: n for n in wf["nodes"]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def measure(base_url: str, workflow_id: str, runs: int, screenshot: Path | None) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    results: list[dict[str, float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for run in range(runs):
                ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                page = ctx.new_page()
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m, problems=problems: (
                        problems.append(m.text)
                        if m.type == "error" and "/api/stream" not in m.text and "503" not in m.text
                        else None
                    ),
                )
                page.on("pageerror", lambda e, problems=problems: problems.append(str(e)))
                start = time.perf_counter()
                page.goto(f"{base_url}/workflows/{workflow_id}")
                page.wait_for_selector(".graph[data-laid-out='true'] .react-flow__node", timeout=30_000)
                laid_out = time.perf_counter() - start
                bar = page.locator(".gantt-bar").first
                bar.wait_for(timeout=30_000)
                bar.click()
                page.wait_for_selector(".task-panel .task-head", timeout=30_000)
                interactive = time.perf_counter() - start
                if problems:
                    raise RuntimeError(f"browser errors: {problems[:3]}")
                results.append({"graph_drawn_s": laid_out, "interactive_s": interactive})
                if screenshot is not None and run == 0:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                ctx.close()
        finally:
            browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--url", help="a running stemtrace server (default: a stand-in with a synthetic workflow)"
    )
    ap.add_argument("--workflow", default=WORKFLOW_ID)
    ap.add_argument(
        "--budget", type=float, default=2.0, help="fail when the median exceeds this many seconds"
    )
    ap.add_argument(
        "--screenshot", type=Path, default=ROOT / "artifacts" / "screenshots" / "bench-workflow-10k.png"
    )
    args = ap.parse_args(argv)
    if not (STATIC / "index.html").is_file():
        print("The UI is not built: cd frontend && npm ci && npm run build", file=sys.stderr)
        return 2
    server = None
    base = args.url
    if base is None:
        server, base = start_stand_in()
    try:
        results = measure(base.rstrip("/"), args.workflow, args.runs, args.screenshot)
    finally:
        if server is not None:
            server.shutdown()
    drawn = statistics.median(r["graph_drawn_s"] for r in results)
    ready = statistics.median(r["interactive_s"] for r in results)
    print(
        json.dumps(
            {
                "benchmark": "ui_workflow_10k",
                "runs": len(results),
                "median_graph_drawn_s": round(drawn, 3),
                "median_interactive_s": round(ready, 3),
                "max_interactive_s": round(max(r["interactive_s"] for r in results), 3),
                "budget_s": args.budget,
            }
        )
    )
    return 0 if ready <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
