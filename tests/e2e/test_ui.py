"""The UI against a real server and a real Celery worker: list → task → workflow, filters, search,
a chord, a chain failing half-way, a 2,000-task group, injection, and every page's screenshot."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.e2e


def rows(page: Any) -> Any:
    return page.locator(".tasks-table .tbody [role=row]")


def test_task_list_is_dense_and_leads_to_task_and_workflow(
    page: Any, scenarios: dict[str, Any], shot: Any
) -> None:
    page.goto("/tasks")
    rows(page).first.wait_for()
    # At least 25 rows visible on a 900 px-high screen.
    visible = page.evaluate(
        """() => { const body = document.querySelector('.tasks-table .tbody').getBoundingClientRect();
                   return [...document.querySelectorAll('.tasks-table .tbody [role=row]')]
                     .filter(r => { const b = r.getBoundingClientRect();
                                    return b.top >= body.top && b.bottom <= body.bottom; }).length; }"""
    )
    assert visible >= 25, visible
    for col in ["State", "Name", "Args", "Worker", "Queue", "Received", "Runtime", "Retries", "Exception"]:
        assert page.get_by_role("columnheader", name=col).is_visible()
    shot(page, "01-tasks")

    step = scenarios["chain_steps"][2]
    page.goto(f"/tasks?q={step[:8]}")
    link = rows(page).first.get_by_role("link")
    link.wait_for()
    expect(rows(page)).to_have_count(1)
    link.click()
    page.wait_for_url(f"**/tasks/{step}")
    page.locator(".task-head h1").wait_for()
    assert page.locator(".task-head h1").inner_text() == "e2e.explode"
    # Breadcrumb root → … → parent → this task.
    crumbs = page.locator(".breadcrumb a")
    crumbs.nth(2).wait_for()
    assert [crumbs.nth(i).inner_text() for i in range(crumbs.count())] == ["Tasks", "e2e.add", "e2e.add"]
    # The failing attempt's traceback is open and names the exception.
    tb = page.locator(".attempt details[open] pre.traceback")
    assert "ValueError: cannot handle 4" in tb.inner_text()
    assert page.locator(".attempt .exc").first.inner_text().startswith("ValueError")
    shot(page, "02-task-failed")

    page.get_by_role("link", name="Open the workflow graph →").click()
    page.wait_for_url(re.compile(r"/workflows/.+\?task="))
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()
    # Selected in both views, with the task panel open.
    expect(page.locator(f".wf-node.selected[data-task-id='{step}']")).to_have_count(1)
    expect(page.locator(f".gantt-bar.selected[data-task-id='{step}']")).to_have_count(1)
    assert page.locator(".task-panel h1").inner_text() == "e2e.explode"
    shot(page, "03-workflow-chain-failed")


def test_chain_failing_half_way(page: Any, scenarios: dict[str, Any]) -> None:
    steps = scenarios["chain_steps"]
    page.goto(f"/workflows/{scenarios['chain_workflow']}")
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()
    assert page.locator(".wf-head .badge").first.inner_text() == "FAILURE"
    failed = page.locator(".wf-node.failed")
    expect(failed).to_have_count(1)
    assert failed.get_attribute("data-task-id") == steps[2]
    assert failed.is_visible()  # scrolled into view first
    # Steps after the failure never ran: greyed (PLANNED/SKIPPED) when the library recorded the plan.
    after = [page.locator(f".wf-node[data-task-id='{s}']") for s in steps[3:]]
    for node in after:
        if node.count():
            assert "inactive" in (node.get_attribute("class") or "")


def test_chord_joins_through_a_counting_node(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto(f"/workflows/{scenarios['chord_workflow']}")
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()
    join = page.locator(".wf-node.join")
    expect(join).to_have_count(1)
    assert re.search(r"5 of 5\s+done → e2e\.tsum", join.inner_text())
    expect(page.locator(".wf-bracket.chord")).to_have_count(1)
    for tid in scenarios["chord_header"]:
        expect(page.locator(f".wf-node[data-task-id='{tid}']")).to_have_count(1)
    # Selecting a bar selects the node and opens the panel; by-worker lanes keep it selected.
    cb = scenarios["chord_callback"]
    page.locator(f".gantt-bar[data-task-id='{cb}']").click()
    page.wait_for_url(re.compile(f"task={cb}"))
    expect(page.locator(f".wf-node.selected[data-task-id='{cb}']")).to_have_count(1)
    page.get_by_role("button", name="By worker").click()
    page.wait_for_url(re.compile("lanes=worker"))
    expect(page.locator(f".gantt-bar.selected[data-task-id='{cb}']")).to_have_count(1)
    shot(page, "04-workflow-chord")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export JSON").click()
    assert dl.value.suggested_filename.startswith("workflow-")


def test_big_group_collapses_and_expands(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto(f"/workflows/{scenarios['big_workflow']}")
    fan = page.locator(".wf-node.fanout")
    fan.first.wait_for(timeout=15_000)
    expect(fan).to_have_count(1)
    assert "\u00d72000" in fan.inner_text()
    # The bracket counts tasks, not the slices drawn (checked once expanded below).
    assert page.locator(".gantt-row").count() > 20  # virtualized: only the visible rows exist
    assert page.locator(".gantt-row").count() < 200
    shot(page, "05-workflow-group-2000")
    fan.locator(".wf-name").click()
    page.wait_for_url(re.compile("expand="))
    # 2,000 members open into 20 slices of 100 inside the group's bracket; a slice opens into tasks.
    page.locator(".wf-bracket").wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.wf-node.fanout').length === 20", timeout=30_000)
    assert "2,000 tasks" in page.locator(".wf-bracket-label").first.inner_text().lower()
    page.locator(".wf-node.fanout .wf-name").first.click()
    page.wait_for_function("() => document.querySelectorAll('.wf-node.task').length >= 100", timeout=30_000)
    expect(page.locator(".wf-node.fanout")).to_have_count(19)
    shot(page, "06-workflow-group-expanded")


def test_filters_and_search_live_in_the_url(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto("/tasks")
    rows(page).first.wait_for()
    page.get_by_role("button", name="FAILURE", exact=True).click()
    page.wait_for_url(re.compile("state=FAILURE"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tasks-table .tbody [role=row] .badge')]"
        ".every(b => b.textContent === 'FAILURE')"
    )
    assert rows(page).count() >= 1
    page.get_by_label("Task name").fill("e2e.explode")
    page.wait_for_url(re.compile("name=e2e.explode"))
    page.wait_for_function("() => document.querySelectorAll('.tasks-table .tbody [role=row]').length === 1")
    shot(page, "07-tasks-filtered")
    page.reload()
    rows(page).first.wait_for()
    assert page.get_by_label("Task name").input_value() == "e2e.explode"
    expect(rows(page)).to_have_count(1)
    page.goto("/tasks?name=no.such.task")
    assert (
        page.get_by_text("No task matches these filters").is_visible()
        or page.get_by_text("No task matches these filters").wait_for() is None
    )
    # Argument text search.
    page.goto("/tasks?q=onerror")
    rows(page).first.wait_for()
    assert rows(page).first.get_attribute("data-task-id") == scenarios["echo"]


def test_html_in_arguments_stays_text(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto(f"/tasks/{scenarios['echo']}")
    page.locator(".json").first.wait_for()
    args = page.get_by_role("tree", name="args", exact=True)
    assert '<img src=x onerror="window.__xss=1">' in args.inner_text().replace('\\"', '"')
    expect(page.locator(".json img, .json b")).to_have_count(0)
    assert page.evaluate("() => window.__xss") is None
    kwargs = page.get_by_role("tree", name="kwargs", exact=True)
    assert "<b>bold</b>" in kwargs.inner_text()
    assert "hunter2" not in page.content()  # redacted by the library, shown as a marker
    expect(kwargs.locator(".marker.redacted")).to_have_count(1)
    shot(page, "08-task-injection")
    page.goto("/tasks?q=onerror")
    rows(page).first.wait_for()
    expect(page.locator(".tasks-table img")).to_have_count(0)


def test_retries_show_every_attempt(page: Any, scenarios: dict[str, Any]) -> None:
    page.goto(f"/tasks/{scenarios['flaky']}")
    page.locator(".attempt").first.wait_for()
    expect(page.locator(".attempt")).to_have_count(3)
    assert "ConnectionError" in page.locator(".attempt").first.inner_text()
    # The timeline draws each attempt as its own bar, in the task's lane.
    page.get_by_role("link", name="Open the workflow graph →").click()
    bars = page.locator(f".gantt-bar[data-task-id='{scenarios['flaky']}']")
    expect(bars).to_have_count(3)
    assert [bars.nth(i).get_attribute("data-attempt") for i in range(3)] == ["1", "2", "3"]


def test_spawned_children_and_paste_jump(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto(f"/tasks/{scenarios['parent']}")
    children = page.locator(".children li")
    children.first.wait_for()
    expect(children).to_have_count(3)
    # Each child is a link named after the task, with its state.
    expect(page.locator(".children li .badge", has_text="SUCCESS")).to_have_count(3)
    links = page.locator(".children li a")
    assert [links.nth(i).inner_text() for i in range(3)] == ["e2e.add"] * 3
    child_id = links.first.get_attribute("title")
    assert child_id
    shot(page, "14-task-children")
    links.first.click()
    page.wait_for_url(f"**/tasks/{child_id}")
    page.locator(".task-head h1", has_text="e2e.add").wait_for()
    page.goto("/workers")
    page.locator(".worker").first.wait_for()
    # Pasting a task id anywhere (outside inputs) jumps to it.
    page.evaluate(
        """(id) => { const dt = new DataTransfer(); dt.setData('text/plain', 'see ' + id);
                     document.body.dispatchEvent(
                       new ClipboardEvent('paste', { clipboardData: dt, bubbles: true })); }""",
        scenarios["chord_callback"],
    )
    page.wait_for_url(f"**/tasks/{scenarios['chord_callback']}")
    # '/' focuses search.
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement && document.activeElement.id") == "global-search"


def test_workers_failures_workflows_pages(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto("/workers")
    card = page.locator(".worker.online").first
    card.wait_for()
    assert "e2e.add" in card.inner_text() or card.locator("summary").inner_text().endswith("registered tasks")
    page.locator("table.stats tbody tr").first.wait_for()
    shot(page, "09-workers")

    page.goto("/failures")
    row = page.locator("table.failures tbody tr", has_text="e2e.explode")
    row.wait_for()
    assert "ValueError" in row.inner_text()
    shot(page, "10-failures")
    row.get_by_role("link", name="e2e.explode").click()
    page.wait_for_url(re.compile(r"/tasks\?.*state=FAILURE"))
    rows(page).first.wait_for()

    page.goto("/workflows")
    page.locator("table.workflows tbody tr").first.wait_for()
    assert (
        page.locator(f"tr[data-workflow-id='{scenarios['chain_workflow']}'] .badge").first.inner_text()
        == "FAILURE"
    )
    shot(page, "11-workflows")


def test_failures_drill_down_by_exception_type(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    """One task name failing two ways: each Failures row opens only its own exception type."""
    page.goto("/failures")
    picky = page.locator("table.failures tbody tr", has_text="e2e.picky")
    picky.first.wait_for()
    expect(picky).to_have_count(2)
    picky.filter(has_text="KeyError").get_by_role("link", name="e2e.picky").click()
    page.wait_for_url(re.compile(r"/tasks\?.*exception_type=builtins\.KeyError"))
    assert "state=FAILURE" in page.url and "name=e2e.picky" in page.url
    expect(rows(page)).to_have_count(1)
    assert rows(page).first.get_attribute("data-task-id") == scenarios["picky_key"]
    assert page.get_by_label("Exception type").input_value() == "builtins.KeyError"
    shot(page, "15-tasks-by-exception-type")

    page.go_back()
    picky.filter(has_text="ValueError").get_by_role("link", name="e2e.picky").click()
    page.wait_for_url(re.compile(r"exception_type=builtins\.ValueError"))
    expect(rows(page)).to_have_count(2)
    got = {rows(page).nth(i).get_attribute("data-task-id") for i in range(2)}
    assert got == set(scenarios["picky_value"])

    # The filter box is URL state like the others: typing changes the list and the link.
    page.goto("/tasks?name=e2e.picky")
    expect(rows(page)).to_have_count(3)
    page.get_by_label("Exception type").fill("builtins.KeyError")
    page.wait_for_url(re.compile(r"exception_type=builtins\.KeyError"))
    expect(rows(page)).to_have_count(1)
    page.get_by_label("Exception type").fill("KeyError")  # exact match: the short name is not enough
    page.wait_for_url(re.compile(r"exception_type=KeyError"))
    page.get_by_text("No task matches these filters").wait_for()
    # Several types (from a link or the API): the extra ones show as removable chips.
    page.goto("/tasks?name=e2e.picky&exception_type=builtins.KeyError&exception_type=builtins.ValueError")
    expect(rows(page)).to_have_count(3)
    page.get_by_role("button", name="Remove exception type filter builtins.ValueError").click()
    expect(rows(page)).to_have_count(1)
    assert "ValueError" not in page.url


def test_theme_and_time_toggles_are_remembered(page: Any, scenarios: dict[str, Any], shot: Any) -> None:
    page.goto("/tasks")
    rows(page).first.wait_for()
    page.get_by_role("button", name="Theme: auto").click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    page.get_by_role("button", name="Theme: light").click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    page.get_by_role("button", name="Local time").click()
    page.reload()
    rows(page).first.wait_for()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert page.get_by_role("button", name="UTC").is_visible()
    assert rows(page).first.locator("time").inner_text().endswith("Z")
    shot(page, "12-tasks-dark-utc")
    page.goto(f"/workflows/{scenarios['chord_workflow']}")
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()
    shot(page, "13-workflow-dark")


def test_unknown_task_shows_the_api_error(page: Any, server_url: str) -> None:
    page.goto("/tasks/00000000-0000-0000-0000-000000000000")
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert "404" in banner.inner_text()


def test_live_updates_and_pause(page: Any, scenarios: dict[str, Any], tasks_module: Any) -> None:
    page.goto("/tasks?name=e2e.add")
    rows(page).first.wait_for()
    page.get_by_role("button", name="Live").wait_for()
    wait_result(tasks_module.add.delay(1000, 1), 30)
    # Arrives through the SSE stream, without a reload.
    page.locator(".tasks-table .c-args", has_text="add(1000, 1)").wait_for(timeout=15_000)

    page.get_by_role("button", name="Live").click()
    page.get_by_role("button", name="Paused").wait_for()
    wait_result(tasks_module.add.delay(2000, 2), 30)
    page.wait_for_timeout(3000)
    expect(page.locator(".tasks-table .c-args", has_text="add(2000, 2)")).to_have_count(0)
    page.get_by_role("button", name="Paused").click()
    page.locator(".tasks-table .c-args", has_text="add(2000, 2)").wait_for(timeout=15_000)


def test_root_path_serves_the_split_bundle_and_404s_missing_assets(
    page: Any, prefixed_url: str, scenarios: dict[str, Any]
) -> None:
    """Behind a proxy prefix: lazily loaded pages and the ELK worker load; missing files are 404."""
    base = f"{prefixed_url}/stemtrace"
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{base}/tasks?name=e2e.tsum")
    rows(page).first.wait_for()
    rows(page).first.get_by_role("link").click()
    page.get_by_role("link", name="Open the workflow graph →").click()
    page.wait_for_url(re.compile(r"/stemtrace/workflows/"))
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()  # chunk + ELK worker
    page.locator(".gantt-bar").first.wait_for()
    page.get_by_role("link", name="Workers").click()
    page.wait_for_url(re.compile(r"/stemtrace/workers"))
    page.locator(".worker").first.wait_for()
    # A deep link straight to a lazily loaded page.
    page.goto(f"{base}/workflows/{scenarios['chord_workflow']}")
    page.locator(".graph[data-laid-out='true'] .react-flow__node").first.wait_for()
    assert not failed, failed

    req = page.request
    assert req.get(f"{base}/assets/WorkflowPage-doesnotexist.js").status == 404
    assert req.get(f"{base}/favicon.ico").status == 404
    route = req.get(f"{base}/tasks/{scenarios['echo']}")
    assert route.status == 200 and '<base href="/stemtrace/">' in route.text()


def test_api_explorer_works_offline_under_the_prefix(page: Any, prefixed_url: str, shot: Any) -> None:
    """/api/docs runs Swagger UI from the package: any request leaving the server is refused."""
    outside: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(prefixed_url):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{prefixed_url}/stemtrace/api/docs")
    page.locator(".opblock-summary-path", has_text="/api/tasks").first.wait_for()
    shot(page, "16-api-explorer")
    assert not outside, outside
