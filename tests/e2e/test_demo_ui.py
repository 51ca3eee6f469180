"""The first hour, in Chromium, against ``stemtrace demo`` itself (not a test worker): every page has
data within seconds, and the Workers page shows the demo's own worker online with its running tasks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import SHOTS, _free_port, get_json, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("demo-ui") / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMTRACE_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from stemtrace.cli import main; main()", "demo", "--no-open",
             "--port", str(port), "--rate", "40", "--duration", "240"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and url + "/" in log.read_text(), "the demo's URL", timeout=90)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_demo_has_data_on_every_page_and_its_worker_online(browser: Any, demo_url: str) -> None:
    started = time.monotonic()
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=demo_url)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/workers")
        online = page.get_by_role("region", name="Online")
        card = online.locator("[data-worker='demo@stemtrace']")
        expect(card).to_be_visible(timeout=30_000)
        expect(card).to_contain_text("online")
        expect(card).not_to_contain_text("Is `stemtrace.init(app)` called")

        # Within a few heartbeats the card shows a running task with its id linked.
        def running() -> bool:
            items = get_json(f"{demo_url}/api/workers")["items"]
            return any(w["hostname"] == "demo@stemtrace" and w["active_tasks"] for w in items)

        wait_for(running, "a running task on the demo's worker", timeout=60)
        page.reload()
        expect(card.locator("a.mono").first).to_be_visible(timeout=15_000)

        page.goto("/tasks")
        expect(page.locator(".tasks-table .tbody [role=row]").first).to_be_visible(timeout=30_000)
        page.goto("/workflows")
        first = page.locator("a[href^='/workflows/']").first
        expect(first).to_be_visible(timeout=30_000)
        first.click()
        page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for(timeout=30_000)
        page.goto("/")
        expect(page.locator("h1")).to_be_visible()
        expect(page).to_have_title(re.compile(r"stemtrace$"))
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / "e2e-demo-home.png"))
    finally:
        ctx.close()
    assert not errors, errors[:5]
    assert time.monotonic() - started < 180
