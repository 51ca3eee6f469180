"""``OneTripRouter`` (api/routing.py): a plain ``def`` route answers exactly as FastAPI's own
routing would (JSON, OpenAPI, errors); it and the JSON of its result are computed in one
worker thread (FastAPI alone renders on the loop after another trip to validate), and the loop
stays free while it blocks; the request dependencies are coroutines, with no trip of their own."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, field_serializer

from stemtrace.server.api import errors
from stemtrace.server.api.errors import ApiError
from stemtrace.server.api.routing import OneTripRouter


class Item(BaseModel):
    task_id: str = Field(alias="taskId")
    at: datetime
    runtime: float | None = None
    tags: list[str] = []

    @field_serializer("tags")
    def _tags(self, tags: list[str]) -> list[str]:
        threads["serialized"] = threading.current_thread().name
        return tags


class Page(BaseModel):
    items: list[Item]
    next_cursor: str | None = None


threads: dict[str, str] = {}


async def loop_dep(q: Annotated[str | None, Query()] = None) -> str:
    threads["dependency"] = threading.current_thread().name
    return q or "none"


def build(router: APIRouter) -> FastAPI:
    @router.get("/page", response_model=Page, summary="A page")
    def page(dep: Annotated[str, Depends(loop_dep)], limit: Annotated[int, Query(ge=1)] = 2) -> Page:
        """A route's docstring."""
        threads["route"] = threading.current_thread().name
        at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
        return Page(
            items=[Item(taskId=f"{dep}-{i}", at=at, runtime=0.5 * i, tags=["a"]) for i in range(limit)],
            next_cursor=None,
        )

    @router.get("/missing", response_model=Page)
    def missing() -> Page:
        raise ApiError(404, "no such page")

    @router.get("/slow")
    def slow(seconds: float = 0.5) -> dict[str, float]:
        time.sleep(seconds)  # a blocking store call
        return {"slept": seconds}

    @router.get("/fast")
    def fast() -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    return app


def test_the_answers_and_the_openapi_spec_are_fastapis_own() -> None:
    plain, one_trip = TestClient(build(APIRouter())), TestClient(build(OneTripRouter()))
    for path in ("/page", "/page?limit=3&q=x", "/page?limit=0", "/missing", "/fast"):
        a, b = plain.get(path), one_trip.get(path)
        assert (b.status_code, b.content, b.headers["content-type"]) == (
            a.status_code,
            a.content,
            a.headers["content-type"],
        ), path
    assert one_trip.get("/page").json()["items"][0] == {
        "taskId": "none-0",
        "at": "2026-01-02T03:04:05.678901Z",
        "runtime": 0.0,
        "tags": ["a"],
    }
    assert one_trip.get("/openapi.json").json() == plain.get("/openapi.json").json()


def test_the_route_and_its_json_run_in_one_worker_thread_and_its_dependency_on_the_loop() -> None:
    with TestClient(build(OneTripRouter())) as client:
        threads.clear()
        assert client.get("/page?q=x").status_code == 200
        loop_thread = threads["dependency"]
        assert threads["route"] != loop_thread
        assert threads["serialized"] == threads["route"]
    with TestClient(build(APIRouter())) as client:  # what it saves: FastAPI renders on the loop
        threads.clear()
        assert client.get("/page?q=x").status_code == 200
        assert threads["serialized"] == threads["dependency"] != threads["route"]


@pytest.mark.timeout(30)
def test_a_blocking_route_leaves_the_loop_serving_others() -> None:
    import uvicorn

    app = build(OneTripRouter())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        slow_done: list[float] = []

        def call_slow() -> None:
            started = time.monotonic()
            httpx.get(base + "/slow?seconds=1.5", timeout=10)
            slow_done.append(time.monotonic() - started)

        blocker = threading.Thread(target=call_slow)
        blocker.start()
        time.sleep(0.2)  # the slow route is blocking its worker thread now
        started = time.monotonic()
        assert httpx.get(base + "/fast", timeout=10).json() == {"ok": "yes"}
        assert time.monotonic() - started < 1.0
        assert not slow_done  # answered while the slow one still blocked
        blocker.join(10)
        assert slow_done and slow_done[0] >= 1.4
    finally:
        server.should_exit = True
        thread.join(10)
