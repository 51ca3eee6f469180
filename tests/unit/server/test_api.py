"""The HTTP contract: shapes, errors, read-only, headers, against a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_events import EventFactory, TestClient

from stemtrace.core.states import TaskState
from stemtrace.server import create_app
from stemtrace.server.store import SqlStore

NOW = 1_790_100_000.0

SUMMARY_KEYS = {
    "id",
    "name",
    "state",
    "workflow_id",
    "parent_id",
    "root_id",
    "group_id",
    "worker",
    "queue",
    "retries",
    "sent_at",
    "received_at",
    "started_at",
    "finished_at",
    "runtime_ms",
    "exception_type",
}


def test_task_list_shape_and_order(client: TestClient) -> None:
    body = client.get("/api/tasks").json()
    assert [t["id"] for t in body["items"]] == ["bad-1", "child-1", "root-1"]
    assert body["next_cursor"] is None
    first = body["items"][2]
    assert set(first) >= SUMMARY_KEYS
    assert first["workflow_id"] == "root-1"
    assert first["sent_at"].endswith("Z") and first["sent_at"].startswith("2026-")
    assert first["runtime_ms"] == pytest.approx(300.0)


def test_task_list_filters_and_cursor(client: TestClient) -> None:
    assert [
        t["id"] for t in client.get("/api/tasks?state=FAILURE&state=success&name=proj.step").json()["items"]
    ] == [
        "bad-1",
        "child-1",
    ]
    assert [t["id"] for t in client.get("/api/tasks", params={"q": "alice"}).json()["items"]] == ["root-1"]
    assert [t["id"] for t in client.get("/api/tasks", params={"workflow": "child-1"}).json()["items"]] == [
        "child-1",
        "root-1",
    ]
    page = client.get("/api/tasks?limit=2").json()
    rest = client.get("/api/tasks", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [t["id"] for t in page["items"] + rest["items"]] == ["bad-1", "child-1", "root-1"]
    since = client.get("/api/tasks", params={"since": "2026-09-21T14:13:22Z"}).json()["items"]
    assert [t["id"] for t in since] == ["bad-1"]


def test_task_list_filters_by_exception_type(client: TestClient) -> None:
    def got(query: str) -> list[str]:
        r = client.get(f"/api/tasks?{query}")
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert got("exception_type=ValueError") == ["bad-1"]
    assert got("exception_type=ValueError&state=FAILURE&name=proj.step") == ["bad-1"]
    assert got("exception_type=ValueError&name=proj.pipeline") == []
    assert got("exception_type=valueerror") == []  # exact
    assert got("exception_type=KeyError&exception_type=ValueError") == ["bad-1"]
    assert got("exception_type=") == ["bad-1", "child-1", "root-1"]  # empty: no filter
    too_many = "&".join(f"exception_type=E{i}" for i in range(51))
    r = client.get(f"/api/tasks?{too_many}")
    assert r.status_code == 422 and "exception_type" in r.json()["error"]["message"]
    spec = client.get("/api/openapi.json").json()
    [param] = [p for p in spec["paths"]["/api/tasks"]["get"]["parameters"] if p["name"] == "exception_type"]
    assert param["schema"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}


def test_task_detail(client: TestClient) -> None:
    body = client.get("/api/tasks/root-1").json()
    assert body["args"] == [1, 2] and body["kwargs"] == {"user": "alice"}
    assert body["children"] == ["child-1"]
    assert body["child_tasks"] == [{"id": "child-1", "name": "proj.step", "state": "SUCCESS"}]
    assert body["child_count"] == 1
    assert body["names"] == ["proj.pipeline"]
    assert [a["number"] for a in body["attempts"]] == [1]
    assert {"lost_reason", "exception", "traceback", "worker"} <= set(body["attempts"][0])
    assert len(body["events"]) == 4
    failed = client.get("/api/tasks/bad-1").json()
    assert failed["exception_type"] == "ValueError" and failed["traceback"]
    assert (failed["children"], failed["child_tasks"], failed["child_count"]) == ([], [], 0)


def test_workflow_graph_by_member_id(client: TestClient) -> None:
    body = client.get("/api/workflows/child-1").json()
    assert body["id"] == "root-1"
    assert {n["id"] for n in body["nodes"]} == {"root-1", "child-1"}
    assert {(e["source"], e["target"]) for e in body["edges"]} == {("root-1", "child-1")}
    listing = client.get("/api/workflows").json()["items"]
    assert [(w["id"], w["state"], w["task_count"]) for w in listing] == [
        ("bad-1", "FAILURE", 1),
        ("root-1", "SUCCESS", 2),
    ]


def test_workflow_graph_is_cached_until_the_workflow_changes(filled: SqlStore) -> None:
    app = create_app(store=filled, ingest=False)
    with TestClient(app) as c:
        first = c.get("/api/workflows/root-1")
        graphs = app.state.stemtrace.graphs
        assert (graphs.hits, graphs.misses) == (0, 1)
        assert c.get("/api/workflows/child-1").content == first.content
        assert graphs.hits == 1
        f = EventFactory()
        filled.apply(f.run("child-2", "proj.step", 3, parent_id="root-1", root_id="root-1"), {}, NOW + 1)
        second = c.get("/api/workflows/root-1").json()
        assert {n["id"] for n in second["nodes"]} == {"root-1", "child-1", "child-2"}
        assert graphs.misses == 2
        assert c.get("/api/workflows/root-1", params={"plumbing": True}).json()["nodes"] == second["nodes"]
        assert graphs.misses == 3


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/api/tasks?limit=abc", 422, "limit"),
        ("/api/tasks?limit=0", 422, "limit"),
        ("/api/tasks?limit=1001", 422, "limit"),
        ("/api/tasks?state=DONE", 422, "unknown state"),
        ("/api/tasks?cursor=%%%", 422, "cursor"),
        ("/api/tasks?since=last-tuesday", 422, "since"),
        ("/api/workflows?state=PENDING", 422, "workflow state"),
        ("/api/stream?topics=nope", 422, "topics"),
        ("/api/tasks/nope", 404, "nope"),
        ("/api/workflows/nope", 404, "nope"),
        ("/api/no-such-route", 404, "no such"),
    ],
)
def test_errors_share_one_shape(client: TestClient, url: str, status: int, needle: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(r.json()) == {"error"}
    assert err["status"] == status and needle in err["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/root-1", "/api/workflows", "/api/anything"])
def test_api_is_read_only(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.json()["error"]["status"] == 405


def test_security_headers_everywhere(client: TestClient) -> None:
    for path in ("/", "/api/tasks", "/api/nope", "/metrics", "/api/docs"):
        h = client.get(path).headers
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self';" in h["content-security-policy"]
        assert "http" not in h["content-security-policy"]  # nothing from another origin
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"
    assert (
        "access-control-allow-origin"
        not in client.get("/api/tasks", headers={"Origin": "http://evil"}).headers
    )


def test_health_metrics_and_aggregates(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["store"]["ok"]
    assert health["ingest"]["enabled"] is False
    metrics = client.get("/metrics").text
    assert "stemtrace_store_up 1" in metrics and "# TYPE stemtrace_ingest_events_total counter" in metrics
    assert client.get("/api/task-names").json()["items"] == [
        {"name": "proj.pipeline", "count": 1},
        {"name": "proj.step", "count": 2},
    ]
    [failure] = client.get("/api/failures").json()["items"]
    assert failure["last_task_id"] == "bad-1" and failure["count"] == 1
    stats = client.get(
        "/api/stats/tasks", params={"since": "2026-09-01T00:00:00Z", "until": "2026-10-01"}
    ).json()
    assert {s["name"]: s["total"] for s in stats["items"]} == {"proj.pipeline": 1, "proj.step": 2}
    assert client.get("/api/stuck").json() == {"items": []}
    assert client.get("/api/workers").json() == {"items": [], "expired": 0}


def test_ui_placeholder_when_not_built(filled: SqlStore, tmp_path: Path) -> None:
    with TestClient(create_app(store=filled, ingest=False, static_dir=tmp_path / "none")) as c:
        r = c.get("/some/page")
    assert r.status_code == 200 and "not built" in r.text
    assert '<meta name="stemtrace-root" content="">' in r.text


def test_ui_files_spa_fallback_and_root_path(filled: SqlStore, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html><head><title>ui</title></head><body></body></html>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    app = create_app(store=filled, ingest=False, static_dir=tmp_path, root_path="/st")
    with TestClient(app, root_path="/st") as c:
        page = c.get("/st/workflows/abc")
        asset = c.get("/st/assets/app.js")
        escape = c.get("/st/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
        api = c.get("/st/api/tasks")
    assert '<meta name="stemtrace-root" content="/st">' in page.text and '<base href="/st/">' in page.text
    assert asset.text == "console.log(1)" and "javascript" in asset.headers["content-type"]
    assert "root:x" not in escape.text and "<title>ui</title>" in escape.text
    assert api.status_code == 200 and len(api.json()["items"]) == 3


@pytest.mark.parametrize("root", ["", "/st"])
def test_missing_assets_are_404_but_routes_get_the_app(filled: SqlStore, tmp_path: Path, root: str) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html><head><title>ui</title></head><body></body></html>")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    app = create_app(store=filled, ingest=False, static_dir=tmp_path, root_path=root)
    with TestClient(app, root_path=root) as c:
        assert c.get(f"{root}/assets/app-1.js").status_code == 200
        for missing in (
            "/assets/app-OLDHASH.js",
            "/assets/deep/chunk.css",
            "/assets",
            "/assets/",
            "/favicon.ico",
            "/robots.txt",
            "/workers/stats.json",
            "/elk-worker.min-abc.js",
        ):
            r = c.get(f"{root}{missing}")
            assert r.status_code == 404, missing
            assert "<title>ui</title>" not in r.text and r.json()["error"]["status"] == 404
        for route in (
            "",
            "/",
            "/tasks",
            "/tasks/abc",
            "/tasks/report.csv",  # a task id that looks like a file name is still a task
            "/tasks/0b7c8e3e-1f6a-4c39-9a3e-0ad1e5f3f001",
            "/workflows/celery.chord_unlock.x?task=a.b",
            "/failures",
            "/workers?range=1h",
            "/no/such/page",
        ):
            r = c.get(f"{root}{route}")
            assert r.status_code == 200, route
            assert "<title>ui</title>" in r.text, route
            assert f'<base href="{root}/">' in r.text


def test_root_path_with_a_proxy_that_forwards_the_prefix(filled: SqlStore, tmp_path: Path) -> None:
    """uvicorn prepends ``--root-path`` to every path, so a proxy that does not strip the prefix
    hands the app ``/st/st/...``: it must serve the same as the stripped ``/st/...``."""
    from stemtrace.server.security import hash_password

    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html><head><title>ui</title></head><body></body></html>")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    app = create_app(store=filled, ingest=False, static_dir=tmp_path, root_path="/st")
    with TestClient(app, root_path="/st") as c:
        assert len(c.get("/st/st/api/tasks").json()["items"]) == 3
        assert c.get("/st/st/assets/app-1.js").text == "console.log(1)"
        assert c.get("/st/st/assets/app-OLD.js").status_code == 404
        page = c.get("/st/st/tasks/abc")
        assert page.status_code == 200 and '<base href="/st/">' in page.text
        assert c.get("/st/st").status_code == 200
        # Only a whole repeated prefix is dropped: this is a client route, not the API.
        assert "<title>ui</title>" in c.get("/st/stx/api/tasks").text
    secured = create_app(
        store=filled,
        ingest=False,
        static_dir=tmp_path,
        auth_user="ops",
        auth_password_hash=hash_password("pw", iterations=1000),
    )
    with TestClient(secured, root_path="/st") as c:
        assert c.get("/st/st/api/tasks").status_code == 401
        assert c.get("/st/st/api/health").status_code == 200


def test_every_task_state_is_in_the_schema(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["components"]["schemas"]["TaskState"]["enum"] == [s.value for s in TaskState]
    assert client.get("/api/docs").status_code == 200


def test_api_docs_page_uses_packaged_swagger_ui_and_no_inline_script(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "api-docs").mkdir(parents=True)
    (static / "api-docs" / "swagger-ui-bundle.js").write_text("/* bundle */")
    (static / "index.html").write_text("<html></html>")
    app = create_app(store_url=f"sqlite:///{tmp_path / 's.db'}", ingest=False, static_dir=static)
    with TestClient(app, root_path="/st") as c:
        page = c.get("/api/docs").text
        assert 'src="/st/api-docs/swagger-ui-bundle.js"' in page
        assert 'content="/st/api/openapi.json"' in page
        assert "cdn" not in page.lower()
        assert "<script>" not in page  # every script is a file: the CSP allows no inline code
        init = c.get("/api/docs/init.js")
        assert init.status_code == 200 and "SwaggerUIBundle" in init.text
        assert init.headers["content-type"].startswith("text/javascript")
        assert c.get("/api-docs/swagger-ui-bundle.js").text == "/* bundle */"


def test_api_docs_page_without_a_ui_build_links_the_spec(tmp_path: Path) -> None:
    app = create_app(store_url=f"sqlite:///{tmp_path / 's.db'}", ingest=False, static_dir=tmp_path / "none")
    with TestClient(app) as c:
        r = c.get("/api/docs")
        assert r.status_code == 200 and 'href="/api/openapi.json"' in r.text and "<script" not in r.text
