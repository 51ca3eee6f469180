"""The Beat page in Chromium, fed by a real ``celery beat`` (instrumented like the worker) that is
stopped for a while and started again: entries with their last outcome, runs over time as a
strip of links to their tasks, the missed runs marked, and the home page listing them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import _spawn, _stop, get_json, wait_for

pytestmark = pytest.mark.e2e
STOPPED_S = 6


def _beat(e2e_env: dict[str, str], n: int) -> subprocess.Popen[bytes]:
    log = Path(e2e_env["LOGDIR"]) / f"beat-{n}.log"
    schedule = Path(e2e_env["LOGDIR"]) / "beat-schedule"
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "e2e_tasks",
        "beat",
        "-s",
        str(schedule),
        "--max-interval",
        "1",
    ]
    proc = _spawn([*args, "-l", "INFO"], e2e_env, log)
    wait_for(lambda: "Sending due task" in log.read_text(), "beat to send", 30)
    return proc


@pytest.fixture(scope="module")
def beat_runs(e2e_env: dict[str, str], worker: Any, server_url: str) -> Iterator[dict[str, Any]]:
    first = _beat(e2e_env, 1)
    time.sleep(5)
    _stop(first)
    time.sleep(STOPPED_S)
    second = _beat(e2e_env, 2)
    try:

        def missed_and_resumed() -> Any:
            items = {e["entry"]: e for e in get_json(f"{server_url}/api/beat")["items"]}
            tick: dict[str, Any] | None = items.get("e2e-tick")
            if tick is None or not [m for m in tick["missed"] if m["before"]]:
                return None
            return items if tick["last_run"]["state"] == "SUCCESS" else None

        yield wait_for(missed_and_resumed, "a missed gap, closed, and a successful run after it", 60)
    finally:
        _stop(second)


def test_the_beat_page_shows_runs_over_time_and_the_missed_ones(page: Any, beat_runs: dict[str, Any]) -> None:
    page.goto("/")
    page.get_by_role("link", name="Beat", exact=True).click()
    expect(page).to_have_title("Beat · stemtrace")
    row = page.locator("table.beat-entries tbody tr[data-entry='e2e-tick']")
    expect(row).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("e2e.tick")
    expect(row.locator(".beat-last [data-state]")).to_have_count(1)
    strip = row.get_by_role("list", name="Latest runs of e2e-tick")
    expect(strip.locator("li.beat-missed").first).to_be_visible()
    assert strip.locator("a.beat-run[data-state='SUCCESS']").count() >= 5
    failing = page.locator("table.beat-entries tbody tr[data-entry='e2e-tick-fails']")
    expect(failing.locator("a.beat-run[data-state='FAILURE']").first).to_be_visible()

    # each run is a link to its task
    first_run = strip.locator("a.beat-run").first
    href = first_run.get_attribute("href")
    first_run.click()
    page.wait_for_url(f"**{href}")
    expect(page.locator("h1")).to_contain_text("e2e.tick")

    # the entry's own runs, with the missed gap said in words
    page.goto("/beat?entry=e2e-tick")
    section = page.get_by_role("region", name="Runs of e2e-tick")
    expect(section.locator(".beat-missed-list li").first).to_contain_text("missed")
    assert section.locator("table.beat-runs tbody tr").count() >= beat_runs["e2e-tick"]["runs"] - 2

    # the runs count opens the task list filtered on the entry
    page.goto("/beat")
    row.locator("td.num a").click()
    page.wait_for_url("**/tasks?beat=e2e-tick")
    expect(page.locator(".tasks-table .tbody [role=row]").first).to_be_visible()


def test_the_home_page_lists_missed_beat_runs(page: Any, beat_runs: dict[str, Any]) -> None:
    page.goto("/")
    section = page.get_by_role("region", name="Missed beat runs")
    item = section.locator("li[data-entry='e2e-tick']")
    expect(item).to_contain_text("missed")
    item.get_by_role("link", name="e2e-tick").click()
    page.wait_for_url("**/beat?entry=e2e-tick")
    expect(page.get_by_role("region", name="Runs of e2e-tick")).to_be_visible()
