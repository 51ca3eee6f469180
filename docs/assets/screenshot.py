"""Take the screenshots the README and the docs show, from a live ``stemtrace demo``.

    python docs/assets/screenshot.py [--chromium /usr/bin/chromium]

Starts ``stemtrace demo --no-open`` on a free port, waits until the demo's failing chord (one of
four header tasks fails, so the callback never runs) has finished, opens its workflow page in
headless Chromium (Playwright) and writes ``docs/assets/workflow.png``, then the "Needs attention"
home page as ``docs/assets/attention.png`` and the demo's 500-task chord (its header collapsed into
one fan-out node) as ``docs/assets/fanout.png``. Nothing here is needed at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        return json.load(resp)


def _failed_chord(base: str) -> str | None:
    """A finished workflow of the demo's failing chord."""
    for task in _get(base, "/api/tasks?name=demo.ship_parcel&state=FAILURE&limit=20")["items"]:
        graph = _get(base, f"/api/workflows/{task['workflow_id']}")
        if graph["state"] != "RUNNING" and any(g["kind"] == "chord" for g in graph["groups"]):
            return str(task["workflow_id"])
    return None


def _fan_out(base: str) -> str | None:
    """A finished workflow of the demo's 500-task chord (``score_item`` x500 -> ``summarize``)."""
    for task in _get(base, "/api/tasks?name=demo.summarize&limit=5")["items"]:
        if task["state"] not in ("PENDING", "RECEIVED", "STARTED"):
            return str(task["workflow_id"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--out", type=Path, default=HERE / "workflow.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    cli = "from stemtrace.cli import main; main()"
    cmd = [sys.executable, "-c", cli, "demo", "--no-open", "--port", str(port)]
    demo = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        workflow = None
        deadline = time.monotonic() + 120
        while workflow is None:
            if time.monotonic() > deadline:
                raise SystemExit("no finished failing chord after 120 s")
            time.sleep(1)
            try:
                workflow = _failed_chord(base)
            except OSError:
                continue
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            page.goto(f"{base}/workflows/{workflow}")
            page.wait_for_load_state("networkidle")
            time.sleep(2)  # the graph layout runs in a Web Worker
            page.screenshot(path=str(args.out))
            attention = args.out.with_name("attention.png")
            page.goto(f"{base}/")
            page.locator("main h1").wait_for()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(attention))
            fanout = args.out.with_name("fanout.png")
            deadline = time.monotonic() + 240  # the demo sends its heavy scenarios now and then
            while (big := _fan_out(base)) is None:
                if time.monotonic() > deadline:
                    raise SystemExit("no finished 500-task chord after 240 s")
                time.sleep(2)
            page.goto(f"{base}/workflows/{big}")
            page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for(timeout=30_000)
            page.wait_for_load_state("networkidle")
            time.sleep(2)
            page.screenshot(path=str(fanout))
            browser.close()
        print(f"wrote {args.out}, {attention} and {fanout}")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
