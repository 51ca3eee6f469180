"""Auth, embedding inside another ASGI app, and the live stream."""

from __future__ import annotations

import base64
import json
import threading
import time

from fastapi import FastAPI
from server_events import EventFactory, TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from stemtrace.server import create_app
from stemtrace.server.live import Hub, StreamFilter
from stemtrace.server.security import hash_password, verify_password
from stemtrace.server.store import Changes, SqlStore


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_password_hash_round_trip() -> None:
    encoded = hash_password("s3cret", iterations=1000)
    assert verify_password("s3cret", encoded) and not verify_password("S3cret", encoded)
    assert "s3cret" not in encoded and not verify_password("x", "garbage")


def test_basic_and_bearer_auth(filled: SqlStore) -> None:
    app = create_app(
        store=filled,
        ingest=False,
        auth_user="ops",
        auth_password_hash=hash_password("pw", iterations=1000),
        auth_tokens="tok-1,tok-2",
    )
    with TestClient(app) as c:
        denied = c.get("/api/tasks")
        assert denied.status_code == 401 and denied.json()["error"]["status"] == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert c.get("/api/tasks", headers=basic("ops", "wrong")).status_code == 401
        assert c.get("/api/tasks", headers=basic("ops", "pw")).status_code == 200
        assert c.get("/api/tasks", headers={"Authorization": "Bearer tok-2"}).status_code == 200
        assert c.get("/api/tasks", headers={"Authorization": "Bearer tok-3"}).status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/health").status_code == 200  # probes need no credentials


def test_password_from_environment(filled: SqlStore, monkeypatch: object) -> None:
    from stemtrace.server.settings import ServerSettings

    settings = ServerSettings.build(env={"STEMTRACE_AUTH_USER": "ops", "STEMTRACE_AUTH_PASSWORD": "envpw"})
    with TestClient(create_app(settings, store=filled, ingest=False)) as c:
        assert c.get("/api/tasks").status_code == 401
        assert c.get("/api/tasks", headers=basic("ops", "envpw")).status_code == 200


def test_mounts_inside_fastapi_and_starlette(filled: SqlStore) -> None:
    host = FastAPI()

    @host.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    host.mount("/stemtrace", create_app(store=filled, ingest=False))
    star = Starlette(routes=[Mount("/trace", app=create_app(store=filled, ingest=False))])
    with TestClient(host) as c:
        assert c.get("/hello").json() == {"hello": "world"}
        assert len(c.get("/stemtrace/api/tasks").json()["items"]) == 3
        assert c.get("/stemtrace/api/tasks/root-1").json()["workflow_id"] == "root-1"
        assert '<meta name="stemtrace-root" content="/stemtrace">' in c.get("/stemtrace/").text
    with TestClient(star) as c:
        assert c.get("/trace/api/workflows/child-1").json()["id"] == "root-1"


def test_stream_filter() -> None:
    batch = [
        Changes(
            tasks=frozenset({"a", "b"}),
            workflows=frozenset({"w1", "w2"}),
            task_workflows={"a": "w1", "b": "w2"},
        ),
        Changes(workers=frozenset({"n@h"})),
    ]
    assert StreamFilter().apply(batch) == {"tasks": ["a", "b"], "workflows": ["w1", "w2"], "workers": ["n@h"]}
    assert StreamFilter(workflow="w1").apply(batch) == {
        "tasks": ["a"],
        "workflows": ["w1"],
        "workers": ["n@h"],
    }
    assert StreamFilter(topics=frozenset({"tasks"}), task="b").apply(batch) == {
        "tasks": ["b"],
        "workflows": [],
        "workers": [],
    }
    assert StreamFilter(topics=frozenset({"tasks"}), task="zzz").apply(batch) == {}


def test_stream_announces_what_the_store_changed(filled: SqlStore) -> None:
    """A write committed to the store (by any replica) reaches a connected SSE client."""
    app = create_app(store=filled, ingest=False)
    got: list[dict[str, list[str]]] = []
    with TestClient(app) as c:
        hub = app.state.stemtrace.hub
        assert isinstance(hub, Hub)

        def write_later() -> None:
            time.sleep(0.6)
            f = EventFactory()
            filled.apply(f.run("late-1", "proj.late", 50), {}, time.time())

        threading.Thread(target=write_later, daemon=True).start()
        with c.stream("GET", "/api/stream", params={"topics": "tasks,workflows"}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    break
    assert got == [{"tasks": ["late-1"], "workflows": ["late-1"], "workers": []}]
