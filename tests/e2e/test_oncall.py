"""The on-call journeys (issue 22) against a real server fed by a real worker: the "Needs attention"
home, every count a link, one definition of waiting, readable labels, scheduled work, live updates that
do not move under the pointer, a dropped stream, accessibility (axe-core, keyboard, 390 px)."""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import ROOT, SHOTS, get_json, wait_for
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.e2e

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
# The few screenshots kept in the repository for review are refreshed only when asked, so an
# ordinary run leaves the work tree clean.
KEPT = Path(__file__).resolve().parent / "screenshots"
REVIEW = KEPT if os.environ.get("STEMTRACE_E2E_REVIEW") == "1" else SHOTS


def rows(page: Any) -> Any:
    return page.locator(".tasks-table .tbody [role=row]")


def graph_ready(page: Any) -> None:
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for(timeout=20_000)


def review(page: Any, name: str) -> None:
    """A few small screenshots for review: into tests/e2e/screenshots/ with STEMTRACE_E2E_REVIEW=1."""
    REVIEW.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(REVIEW / f"review-{name}.png" if REVIEW is SHOTS else REVIEW / f"{name}.png"))


@pytest.fixture(scope="module")
def oncall(tasks_module: Any, worker: Any, server_url: str, scenarios: dict[str, Any]) -> dict[str, Any]:
    """A 30-member group with 3 failures, an ETA task, a task on a queue no worker consumes and a
    failure with an over-long traceback."""
    from celery import chord, group

    t = tasks_module
    out: dict[str, Any] = {}
    shaky = group(t.shaky.s(i) for i in range(30)).apply_async()
    out["shaky"] = [r.id for r in shaky.results]
    out["shaky_failed"] = [r.id for i, r in enumerate(shaky.results) if i % 10 == 3]
    out["scheduled"] = t.add.apply_async((5, 5), countdown=600).id
    # Routed to a queue no worker consumes: it waits forever, and Celery says nothing.
    out["unconsumed"] = t.add.apply_async((7, 7), queue=f"{t.QUEUE}_nobody").id
    out["verbose"] = t.verbose.delay().id
    nested = group(chord([t.add.s(i, i) for i in range(2)], t.tsum.s()) for _ in range(2)).apply_async()
    out["nested_callback"] = nested.results[0].id
    wait_result(shaky, 60, propagate=False)
    wait_result(nested, 60)

    def stored(tid: str, states: tuple[str, ...]) -> bool:
        try:
            return str(get_json(f"{server_url}/api/tasks/{tid}")["state"]) in states
        except Exception:
            return False

    for tid in out["shaky_failed"]:
        wait_for(partial(stored, tid, ("FAILURE",)), "the shaky failures", 60)
    wait_for(lambda: stored(out["scheduled"], ("RECEIVED",)), "the scheduled task to be received", 60)
    wait_for(lambda: stored(out["verbose"], ("FAILURE",)), "the verbose failure", 60)
    wait_for(lambda: stored(out["nested_callback"], ("SUCCESS",)), "the nested chord", 60)
    out["nested_workflow"] = get_json(f"{server_url}/api/workflows/{out['nested_callback']}")["id"]
    out["shaky_workflow"] = get_json(f"{server_url}/api/workflows/{out['shaky'][0]}")["id"]
    wait_for(
        lambda: sum(get_json(f"{server_url}/api/workflows/{out['shaky_workflow']}")["counts"].values()) == 30,
        "the 30 group members",
        60,
    )
    return out


def test_attention_home_links_failures_to_their_tasks(
    page: Any, scenarios: dict[str, Any], oncall: Any
) -> None:
    page.goto("/")
    expect(page).to_have_title("Needs attention · stemtrace")
    table = page.locator("table.attention-failures")
    row = table.locator("tbody tr", has_text="e2e.picky").filter(has_text="KeyError")
    row.wait_for()
    # The short class, its full path on hover.
    assert row.locator("code.exc-type").get_attribute("title") == "builtins.KeyError"
    assert row.locator("code.exc-type").inner_text() == "KeyError"
    assert row.locator("svg.failed-bars").count() == 1  # counts over time
    review(page, "attention")
    row.locator("td.num a").click()
    page.wait_for_url(re.compile(r"/tasks\?.*state=FAILURE"))
    assert "exception_type=builtins.KeyError" in page.url
    expect(rows(page)).to_have_count(1)
    assert rows(page).first.get_attribute("data-task-id") == scenarios["picky_key"]


def test_attention_home_shows_a_retry_storm(page: Any, scenarios: dict[str, Any], tasks_module: Any) -> None:
    # Each flaky(2) retries twice before it succeeds: with the scenarios' one, 6 retries over 3 tasks.
    more = [tasks_module.flaky.delay(2) for _ in range(2)]
    for result in more:
        wait_result(result, 60)
    page.goto("/")
    row = page.locator("table.attention-retries tr[data-task-name='e2e.flaky']")
    row.wait_for(timeout=20_000)
    retries = int(row.locator("td.num").first.inner_text().replace(",", ""))
    assert retries >= 6, retries
    row.get_by_role("link", name="e2e.flaky").click()
    page.wait_for_url(re.compile(r"/tasks\?name=e2e.flaky"))
    for result in more:
        page.locator(f".tasks-table [data-task-id='{result.id}']").wait_for()
        assert page.locator(f".tasks-table [data-task-id='{result.id}'] .c-retries").inner_text() == "2"


def test_every_count_on_a_workflow_is_a_link(page: Any, scenarios: dict[str, Any]) -> None:
    page.goto(f"/workflows/{scenarios['chain_workflow']}")
    graph_ready(page)
    page.locator(".wf-counts a.count", has=page.locator(".badge", has_text="FAILURE")).click()
    page.wait_for_url(re.compile(r"/tasks\?state=FAILURE&workflow="))
    expect(rows(page)).to_have_count(1)
    assert rows(page).first.get_attribute("data-task-id") == scenarios["chain_steps"][2]
    expect(page.locator("[data-match-count]")).to_have_text("1 task matches")

    page.goto("/workers")
    card = page.locator(".worker.online").first
    card.wait_for()
    running = card.locator("dd a").first
    href = running.get_attribute("href") or ""
    assert "state=STARTED" in href and "worker=" in href, href
    page.locator("table.stats tbody tr").first.wait_for()
    explode = page.locator("table.stats tbody tr", has_text="e2e.explode")
    explode.get_by_role("link", name=re.compile("failed")).click()
    page.wait_for_url(re.compile(r"name=e2e.explode&state=FAILURE"))
    rows(page).first.wait_for()


def test_a_fan_out_lists_its_failures_first(page: Any, oncall: dict[str, Any], shot: Any) -> None:
    page.goto(f"/workflows/{oncall['shaky_workflow']}")
    fan = page.locator(".wf-node.fanout")
    fan.first.wait_for(timeout=20_000)
    expect(page.locator("h1")).to_have_text("group: shaky \u00d730")
    expect(page).to_have_title(re.compile(r"^FAILURE group: shaky \u00d730 · stemtrace$"))
    fan.get_by_role("button", name="list").click()
    panel = page.get_by_role("complementary", name="Fan-out members")
    members = panel.locator(".fan-members li")
    expect(members).to_have_count(3)
    texts = sorted(members.nth(i).inner_text() for i in range(3))
    assert [re.search(r"shaky\((\d+)\)", x).group(1) for x in texts] == ["13", "23", "3"]  # type: ignore[union-attr]
    assert all("RuntimeError" in x for x in texts)
    review(page, "fanout-failed-first")
    fan.get_by_role("link", name="3 failed").click()
    page.wait_for_url(re.compile(r"/tasks\?name=e2e.shaky&state=FAILURE"))
    assert "group=" in page.url  # exactly this fan-out's members, not every same-named task
    expect(rows(page)).to_have_count(3)
    assert {rows(page).nth(i).get_attribute("data-task-id") for i in range(3)} == set(oncall["shaky_failed"])
    assert rows(page).first.locator(".c-args").inner_text().startswith("shaky(")


def test_one_definition_of_waiting(page: Any, scenarios: dict[str, Any]) -> None:
    cb = scenarios["chord_callback"]
    page.goto(f"/tasks/{cb}")
    phases = page.locator(".attempt [data-phases]").first
    phases.wait_for()
    text = phases.inner_text()
    assert re.fullmatch(r"queued \S+ \S+ · reserved \S+ \S+ · run \S+ \S+", text), text
    assert "0.00" not in text
    page.goto(f"/workflows/{scenarios['chord_workflow']}?task={cb}")
    bar = page.locator(f".gantt-bar[data-task-id='{cb}']")
    bar.wait_for()
    tip = bar.get_attribute("title") or ""
    # The same three figures, by the same definition, in the timeline.
    assert tip.splitlines()[-1].split(" · ")[:2] == text.split(" · ")[:2], (tip, text)


def test_readable_labels(page: Any, scenarios: dict[str, Any], oncall: dict[str, Any]) -> None:
    page.goto(f"/workflows/{scenarios['chord_workflow']}")
    graph_ready(page)
    expect(page.locator("h1")).to_have_text("chord: add \u00d75 \u2192 tsum")
    # Same-named siblings carry their argument digest, in the graph and in the timeline.
    digests = page.locator(".wf-node .wf-digest")
    expect(digests).to_have_count(5)
    assert sorted(digests.nth(i).inner_text() for i in range(5)) == [f"({i}, {i})" for i in range(5)]
    assert page.locator(".gantt-label", has_text="(3, 3)").count() == 1
    # The chain's failed step shows the short exception class, the full path on hover.
    page.goto(f"/workflows/{scenarios['chain_workflow']}")
    graph_ready(page)
    exc = page.locator(".wf-node.failed .exc-type")
    assert exc.inner_text() == "ValueError" and exc.get_attribute("title") == "builtins.ValueError"
    expect(page.locator("h1")).to_have_text("chain: add → add → explode → … (5 steps)")
    # Opening the panel re-fits the graph: every node of this small graph stays in view.
    page.locator(f".wf-node[data-task-id='{scenarios['chain_steps'][0]}']").click()
    page.get_by_role("complementary", name="Selected task").wait_for()
    page.wait_for_timeout(600)
    inside = page.evaluate(
        """() => { const g = document.querySelector('.graph').getBoundingClientRect();
                   return [...document.querySelectorAll('.wf-node')].every(n => {
                     const b = n.getBoundingClientRect();
                     return b.left >= g.left - 1 && b.right <= g.right + 1
                       && b.top >= g.top - 1 && b.bottom <= g.bottom + 1; }); }"""
    )
    assert inside
    expect(page.locator(".react-flow__minimap")).to_have_count(0)  # never drawn over nodes unless asked
    # The list renders arguments as a call and says how many tasks match.
    page.goto("/tasks?name=e2e.add")
    rows(page).first.wait_for()
    assert re.fullmatch(r"add\(\d+, \d+\)|add\(\d+\)", rows(page).first.locator(".c-args").inner_text())
    expect(page.locator("[data-match-count]")).to_have_text(re.compile(r"^\d+ tasks match$"))
    page.goto("/tasks")
    rows(page).first.wait_for()
    expect(page.locator("[data-match-count]")).to_have_text("more than 200 match")


def test_a_task_names_its_own_summary(page: Any, server_url: str, tasks_module: Any) -> None:
    from celery import group

    sent = group(tasks_module.ship.s(4527 + i, 2.5) for i in range(3)).apply_async()
    wait_result(sent, 120)
    first = sent.results[0].id

    def stored() -> str | None:
        try:
            wf = get_json(f"{server_url}/api/workflows/{first}")
        except Exception:
            return None
        return str(wf["id"]) if wf["counts"].get("SUCCESS") == 3 else None

    wf_id = wait_for(stored, "the three ship tasks", 60)
    page.goto(f"/workflows/{wf_id}")
    graph_ready(page)
    # The task's own argsrepr, not its arguments (the weight, 2.5, is left out).
    digests = page.locator(".wf-node .wf-digest")
    expect(digests).to_have_count(3)
    assert sorted(digests.nth(i).inner_text() for i in range(3)) == [f"(parcel={4527 + i})" for i in range(3)]


def test_nested_chords_are_drawn_inside_their_group(page: Any, oncall: dict[str, Any]) -> None:
    page.goto(f"/workflows/{oncall['nested_workflow']}")
    graph_ready(page)
    expect(page.locator(".wf-bracket.chord")).to_have_count(2)
    inside = page.evaluate(
        """() => { const outer = document.querySelector('.wf-bracket.group').getBoundingClientRect();
                   return [...document.querySelectorAll('.wf-bracket.chord, .wf-node.join')].map(el => {
                     const b = el.getBoundingClientRect();
                     return b.left >= outer.left && b.right <= outer.right
                       && b.top >= outer.top && b.bottom <= outer.bottom; }); }"""
    )
    assert inside == [True] * 4, inside
    # The outer bracket counts every task inside it: two chords of two headers and a callback.
    assert "6 tasks" in page.locator(".wf-bracket.group .wf-bracket-label").inner_text().lower()


def test_scheduled_and_truncated_are_said(page: Any, oncall: dict[str, Any]) -> None:
    page.goto(f"/tasks/{oncall['scheduled']}")
    page.locator(".task-head").wait_for()
    expect(page.locator(".task-head .scheduled")).to_contain_text("scheduled for")
    expect(page.locator(".task-head .badge", has_text="SCHEDULED")).to_have_count(1)
    expect(page).to_have_title(re.compile(r"^RECEIVED add [0-9a-f]{6} · stemtrace$"))
    page.goto(f"/tasks/{oncall['verbose']}")
    page.locator(".attempt").first.wait_for()
    expect(page.locator(".attempt .marker.truncated").first).to_contain_text("truncated")


def test_scheduled_work_is_said_in_the_list_the_graph_and_its_workflow(
    page: Any, server_url: str, oncall: dict[str, Any]
) -> None:
    tid = oncall["scheduled"]  # add(5, 5) with a 10-minute countdown: RECEIVED by the worker, not started
    # The Tasks list: a SCHEDULED badge (the real state kept in data-state) and "scheduled for T".
    page.goto("/tasks?name=e2e.add&state=RECEIVED")
    row = page.locator(f".tasks-table [data-task-id='{tid}']")
    row.wait_for()
    badge = row.locator(".c-state .badge")
    expect(badge).to_have_text("SCHEDULED")
    assert badge.get_attribute("data-state") == "RECEIVED"
    expect(row.locator(".c-name .scheduled")).to_contain_text("scheduled for")
    eta = row.locator(".c-name .scheduled").get_attribute("data-eta") or ""
    assert eta == get_json(f"{server_url}/api/tasks/{tid}")["eta"], eta
    # The workflow waits only on that task: the API keeps RUNNING and says until when.
    wf = get_json(f"{server_url}/api/workflows/{tid}")
    assert (wf["state"], wf["scheduled_for"]) == ("RUNNING", eta), wf
    # The Workflows list says "Scheduled for T" instead of RUNNING.
    page.goto("/workflows?name=e2e.add&state=RUNNING")
    listed = page.locator(f"table.workflows tr[data-workflow-id='{wf['id']}']")
    listed.wait_for()
    expect(listed.locator(".badge").first).to_have_text("SCHEDULED")
    expect(listed.locator(".scheduled")).to_contain_text("Scheduled for")
    # The workflow page (title and heading) and its graph node say it too.
    listed.locator("td a").first.click()
    page.wait_for_url(re.compile(f"/workflows/{wf['id']}"))
    graph_ready(page)
    expect(page).to_have_title(re.compile(r"^SCHEDULED add · stemtrace$"))
    expect(page.locator(".wf-head .badge").first).to_have_text("SCHEDULED")
    expect(page.locator(".wf-head .scheduled")).to_contain_text("Scheduled for")
    node = page.locator(f".wf-node[data-task-id='{tid}']")
    expect(node.locator(".badge")).to_have_text("SCHEDULED")
    expect(node.locator(".scheduled")).to_contain_text("for ")
    assert node.locator(".scheduled").get_attribute("data-eta") == eta
    review(page, "scheduled-workflow")


def test_the_workflows_list_names_workflows_by_their_shape(
    page: Any, scenarios: dict[str, Any], oncall: dict[str, Any]
) -> None:
    page.goto("/workflows?name=e2e.add")
    names = {
        scenarios["chord_workflow"]: "chord: add \u00d75 \u2192 tsum",
        scenarios["chain_workflow"]: "chain: add \u2192 add \u2192 explode \u2192 \u2026 (5 steps)",
    }
    for wf_id, name in names.items():
        link = page.locator(f"table.workflows tr[data-workflow-id='{wf_id}'] td a").first
        expect(link).to_have_text(name)
        assert link.get_attribute("title") == "root task: e2e.add"
    page.goto("/workflows?name=e2e.shaky")
    shaky = page.locator(f"table.workflows tr[data-workflow-id='{oncall['shaky_workflow']}'] td a").first
    expect(shaky).to_have_text("group: shaky \u00d730")
    review(page, "workflows-by-shape")
    # The page names it the same way: one name, computed once with the summary.
    shaky.click()
    expect(page.locator("h1")).to_have_text("group: shaky \u00d730")


def test_new_rows_wait_behind_a_pill_while_hovering(
    page: Any, scenarios: dict[str, Any], tasks_module: Any
) -> None:
    page.goto("/tasks?name=e2e.add")
    rows(page).first.wait_for()
    page.get_by_role("button", name="Live").wait_for()
    first = rows(page).first.get_attribute("data-task-id")
    rows(page).nth(2).hover()
    new = tasks_module.add.delay(4242, 1)
    wait_result(new, 30)
    pill = page.get_by_role("button", name=re.compile(r"^\d+ new — show$"))
    pill.wait_for(timeout=15_000)
    # Nothing moved under the pointer.
    assert rows(page).first.get_attribute("data-task-id") == first
    pill.click()
    page.locator(f".tasks-table [data-task-id='{new.id}']").wait_for()
    assert rows(page).first.get_attribute("data-task-id") == new.id


def test_a_dropped_stream_says_reconnecting_and_comes_back(page: Any, scenarios: dict[str, Any]) -> None:
    state = {"calls": 0, "down": True}

    def stream(route: Any) -> None:
        state["calls"] += 1
        if state["calls"] == 1:  # opens, then ends at once: the stream "drops"
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body="retry: 300\n\n")
        elif state["down"]:
            route.abort()
        else:
            route.continue_()

    page.route("**/api/stream**", stream)
    page.goto("/tasks")
    rows(page).first.wait_for()
    banner = page.locator("[data-stale]")
    banner.wait_for(timeout=15_000)
    assert "reconnecting" in banner.inner_text()
    expect(page.get_by_role("button", name="Reconnecting…")).to_be_visible()
    assert rows(page).count() > 0  # the data stays
    state["down"] = False
    page.get_by_role("button", name="Live").wait_for(timeout=30_000)
    expect(banner).to_have_count(0)


def _axe(page: Any) -> list[dict[str, Any]]:
    page.route("**/__axe.js", lambda r: r.fulfill(body=AXE.read_bytes(), content_type="text/javascript"))
    page.add_script_tag(url="/__axe.js")
    result = page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
        ".map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violation_on_any_page(
    page: Any, scenarios: dict[str, Any], oncall: Any
) -> None:
    pages = {
        "/": "table.attention-failures",
        "/tasks": ".tasks-table .tbody [role=row]",
        f"/tasks/{scenarios['chain_steps'][2]}": ".attempt",
        "/workflows": "table.workflows tbody tr",
        f"/workflows/{scenarios['chord_workflow']}?task={scenarios['chord_callback']}": ".task-panel h1",
        "/failures": "table.failures tbody tr",
        "/workers": "table.stats tbody tr",
    }
    found: dict[str, Any] = {}
    for theme in ("light", "dark"):
        page.goto("/")
        page.evaluate(f"() => localStorage.setItem('stemtrace.theme', '{theme}')")
        for path, ready in pages.items():
            page.goto(path)
            page.locator(ready).first.wait_for(timeout=20_000)
            page.wait_for_timeout(300)
            bad = _axe(page)
            if bad:
                found[f"{theme} {path}"] = bad
    assert not found, found


def test_graph_and_timeline_work_from_the_keyboard(page: Any, scenarios: dict[str, Any]) -> None:
    steps = scenarios["chain_steps"]
    page.goto(f"/workflows/{scenarios['chain_workflow']}")
    graph_ready(page)
    page.locator(f".react-flow__node:has([data-task-id='{steps[0]}'])").focus()
    page.keyboard.press("ArrowRight")
    # The graph moves focus on the next animation frame (after centring the node): wait for it.
    page.wait_for_function(
        "id => document.activeElement?.querySelector('[data-task-id]')?.dataset.taskId === id", arg=steps[1]
    )
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"task={steps[1]}"))
    bar = page.locator(f".gantt-bar[data-task-id='{steps[0]}']")
    bar.focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("id => (document.activeElement?.dataset.taskId ?? id) !== id", arg=steps[0])
    nxt = page.evaluate("() => document.activeElement.dataset.taskId")
    assert nxt and nxt != steps[0]
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"task={nxt}"))


def test_usable_at_390_px(browser: Any, server_url: str, scenarios: dict[str, Any]) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server_url)
    page = ctx.new_page()
    try:
        paths = [
            "/",
            "/tasks",
            f"/tasks/{scenarios['chain_steps'][2]}",
            f"/workflows/{scenarios['chord_workflow']}",
        ]
        for path in paths:
            page.goto(path)
            page.locator("main h1").first.wait_for()
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 392, (path, width)
            nav = page.get_by_role("navigation", name="Main")
            expect(nav.get_by_role("link", name="Tasks", exact=True)).to_be_visible()
        page.goto("/tasks")
        rows(page).first.wait_for()
        assert rows(page).first.locator(".c-name").is_visible()
        assert not rows(page).first.locator(".c-args").is_visible()
        review(page, "tasks-390px")
    finally:
        ctx.close()


def test_attention_home_lists_a_task_no_worker_will_take(page: Any, oncall: dict[str, Any]) -> None:
    tid = oncall["unconsumed"]
    page.goto("/")
    page.locator("main h1").wait_for()
    row = page.locator("table.attention-stuck tr[data-reason='unconsumed_queue']").filter(
        has=page.locator(f"a[href$='/tasks/{tid}']")
    )

    def listed() -> bool:
        # A task is judged once it sat unchanged for a minute (attention.STALE_AFTER_S).
        if row.count():
            return True
        page.reload()
        page.locator("main h1").wait_for()
        return False

    wait_for(listed, "the unconsumed task on the attention page", 150, every=5)
    expect(row).to_contain_text("no online worker consumes queue")
    row.locator(f"a[href$='/tasks/{tid}']").click()
    page.wait_for_url(re.compile(f"/tasks/{tid}"))
    expect(page.locator(".task-head .badge").first).to_have_text("PENDING")
