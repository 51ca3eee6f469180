"""What stemtrace shows matches what Celery did, on a real prefork worker, through the server's API.

Each test runs a task on a real worker (Redis broker and result backend), reads the events the
library sent, folds them in a real SQLite store and reads the task back through the HTTP API,
comparing with what Celery itself logs or its result backend records.
"""

from __future__ import annotations

import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu.connection import Connection
from tests.support import AppSettings, Recorder, WorkerProcess, make_app, read_stream

from stemtrace.capture import celery_compat as compat
from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.store import open_store

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rec(redis_url: str) -> Iterator[Recorder]:
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    with Recorder(pool="prefork", concurrency=2, settings=settings) as recorder:
        yield recorder


def shown(events: list[dict[str, Any]], task_id: str, tmp_path: Path) -> dict[str, Any]:
    """The task as the API shows it, after the server stored ``events``."""
    store = open_store(f"sqlite:///{tmp_path / (task_id + '.db')}")
    try:
        store.apply([decode_event(e) for e in events], {}, time.time())
        with TestClient(create_app(store=store, ingest=False)) as client:
            response = client.get(f"/api/tasks/{task_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body
    finally:
        store.close()


def test_a_long_message_and_a_deep_stack_are_shown_not_lost(rec: Recorder, tmp_path: Path) -> None:
    """A 6 KB message raised 60 frames deep: the message is a preview of its beginning flagged
    as cut with its size, the traceback is whole (text, never null)."""
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.deep_fail.delay(60, 6000)))
    result = holder["r"]
    task = shown(events, result.id, tmp_path)
    message = "invalid input: " + "m" * 6000
    assert isinstance(task["exception"], str) and message.startswith(task["exception"])
    assert len(task["exception"]) >= 1000
    assert task["exception_truncated"] is True and task["exception_original_size"] == len(message)
    backend_tb = result.traceback  # what Celery's result backend stored
    assert isinstance(task["traceback"], str)
    assert task["traceback_truncated"] is False and task["traceback_original_size"] is None
    assert task["traceback"] == backend_tb.rstrip("\n") or task["traceback"] == backend_tb
    assert task["traceback"].count(", in down_") >= 60
    assert task["traceback"].rstrip().splitlines()[-1].startswith("ValueError: invalid input: ")
    (attempt,) = task["attempts"]
    assert attempt["traceback"] == task["traceback"] and attempt["exception_truncated"] is True


def test_a_stack_over_the_cap_keeps_its_head_and_its_innermost_frames(rec: Recorder, tmp_path: Path) -> None:
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.deep_fail.delay(400, 10)))
    result = holder["r"]
    task = shown(events, result.id, tmp_path)
    backend_tb: str = result.traceback
    assert len(backend_tb.encode()) > 16384
    text = task["traceback"]
    assert task["traceback_truncated"] is True
    assert task["traceback_original_size"] == len(backend_tb.encode())
    assert text.startswith("Traceback (most recent call last):")
    assert text.rstrip().endswith("ValueError: invalid input: mmmmmmmmmm")
    assert "bytes cut" in text and len(text.encode()) <= 16384
    # The innermost frames (the end of Celery's own traceback) are there whole.
    assert backend_tb.rstrip().endswith(text.rstrip()[-3000:])


def _backend_type(result: Any) -> str:
    """The exception type Celery's result backend records for ``result``, as its user knows it:
    the class of ``AsyncResult.result``, or the class an ``UnpickleableExceptionWrapper`` names."""
    exc = result.result
    if type(exc).__name__ == "UnpickleableExceptionWrapper":
        return f"{exc.exc_module}.{exc.exc_cls_name}"
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _listed(events: list[dict[str, Any]], tmp_path: Path, path: str) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'list.db'}")
    try:
        store.apply([decode_event(e) for e in events], {}, time.time())
        with TestClient(create_app(store=store, ingest=False)) as client:
            response = client.get(path)
            assert response.status_code == 200, response.text
            return response.json()
    finally:
        store.close()


def test_exception_types_are_what_the_result_backend_records(rec: Recorder, tmp_path: Path) -> None:
    """An unknown task, a plain error and an error pickle refuses: the type shown, grouped and
    filtered on is the one Celery's result backend (Redis) records, never a Celery wrapper."""
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["unknown"] = t.app.send_task("t.nope", queue=rec.settings.queue)
        holder["plain"] = t.fail.delay("plain")
        holder["unpicklable"] = t.unpicklable_fail.delay("holds a lock")
        return holder["unpicklable"]

    events = rec.record(scenario, settle_s=1.5)
    for key, result in holder.items():
        for _ in range(50):
            if result.ready():
                break
            time.sleep(0.1)
        expected = _backend_type(result)
        assert "UnpickleableExceptionWrapper" not in expected and "KeyError" not in expected, key
        task = shown(events, result.id, tmp_path)
        assert task["exception_type"] == expected, key
        assert task["state"] == "FAILURE", key
    assert _backend_type(holder["unknown"]) == "celery.exceptions.NotRegistered"
    assert _backend_type(holder["unpicklable"]) == "tests.support.app.UnpicklableError"
    listed = _listed(events, tmp_path, "/api/tasks?exception_type=celery.exceptions.NotRegistered")
    assert [t["id"] for t in listed["items"]] == [holder["unknown"].id]
    failures = _listed(events, tmp_path, "/api/failures")
    types = {g["exception_type"] for g in failures["items"]}
    assert {"celery.exceptions.NotRegistered", "tests.support.app.UnpicklableError"} <= types


def _logged_runtime(log: str, task_id: str) -> float:
    """The runtime Celery's worker logs for ``task_id``: "Task …[id] succeeded in 0.2s: …"."""
    match = re.search(rf"\[{re.escape(task_id)}\] succeeded in ([0-9.e-]+)s", log)
    assert match is not None, log[-2000:]
    return float(match.group(1))


def test_runtime_is_celerys_and_success_handlers_are_apart(rec: Recorder, tmp_path: Path) -> None:
    """A 0.2 s body whose ``on_success`` sleeps 0.4 s: ``runtime_ms`` is what Celery logs as
    "succeeded in" (before the handler); the handler's time is ``handler_ms``."""
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.slow_handler.delay(0.2)), settle_s=1.5)
    task_id = holder["r"].id
    task = shown(events, task_id, tmp_path)
    logged = _logged_runtime(rec.worker.log(), task_id)
    assert 0.2 <= logged < 0.4
    (attempt,) = task["attempts"]
    if compat.CELERY_VERSION >= (5, 7):  # task_success carries Celery's runtime
        assert task["runtime_ms"] == pytest.approx(logged * 1000.0, abs=1e-6)
        assert task["handler_ms"] >= 400.0
    else:  # before: up to task_success, which Celery sends after on_success
        assert task["runtime_ms"] >= 600.0
        assert task["handler_ms"] is not None and task["handler_ms"] < 100.0
    assert attempt["runtime_ms"] == task["runtime_ms"] and attempt["handler_ms"] == task["handler_ms"]
    # A task without handlers: the runtime is still Celery's, handlers take next to nothing.
    events = rec.record(lambda t: holder.setdefault("s", t.sleeper.delay(0.05)))
    plain = shown(events, holder["s"].id, tmp_path)
    if compat.CELERY_VERSION >= (5, 7):
        assert plain["runtime_ms"] == pytest.approx(
            _logged_runtime(rec.worker.log(), holder["s"].id) * 1000.0
        )
    assert plain["handler_ms"] is not None and plain["handler_ms"] < 50.0


def _routed_settings(broker_url: str, backend_url: str, **options: Any) -> AppSettings:
    """A worker consuming one queue bound to a topic exchange by ``image.#``, and ``t.add``
    routed there with the routing key ``image.compress`` (which no queue is named after)."""
    uid = uuid.uuid4().hex[:10]
    queue = f"st_images_{uid}"
    return AppSettings(
        broker_url=broker_url,
        backend_url=backend_url,
        queue=queue,
        options=options,
        conf={
            "task_queues": {
                queue: {"exchange": f"st_media_{uid}", "exchange_type": "topic", "routing_key": "image.#"}
            },
            "task_routes": {"t.add": {"queue": queue, "routing_key": "image.compress"}},
        },
    )


def _check_routed(events: list[dict[str, Any]], task_id: str, queue: str, tmp_path: Path) -> None:
    mine = [e for e in events if e.get("task", {}).get("id") == task_id]
    (published,) = [e for e in mine if e["type"] == "task.published"]
    (received,) = [e for e in mine if e["type"] == "task.received"]
    for event in (published, received):  # both sides name the queue, and the key apart
        assert event["data"]["queue"] == queue, event
        assert event["data"]["routing_key"] == "image.compress", event
    task = shown(events, task_id, tmp_path)
    assert task["queue"] == queue and task["routing_key"] == "image.compress"
    by_queue = _listed(events, tmp_path, f"/api/tasks?queue={queue}")
    assert [t["id"] for t in by_queue["items"]] == [task_id]
    assert by_queue["items"][0]["routing_key"] == "image.compress"
    by_key = _listed(events, tmp_path, "/api/tasks?routing_key=image.compress")
    assert [t["id"] for t in by_key["items"]] == [task_id]
    assert _listed(events, tmp_path, "/api/tasks?queue=image.compress")["items"] == []


def test_the_queue_is_the_routed_queue_on_redis(redis_url: str, tmp_path: Path) -> None:
    settings = _routed_settings(redis_url, redis_url)
    holder: dict[str, Any] = {}
    with Recorder(pool="solo", settings=settings) as recorder:
        events = recorder.record(lambda t: holder.setdefault("r", t.add.delay(1, 2)))
        assert holder["r"].get(timeout=10) == 3
    _check_routed(events, holder["r"].id, settings.queue, tmp_path)


def test_the_queue_is_the_routed_queue_on_rabbitmq(
    amqp_url: str, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    """RabbitMQ routes by the topic binding; events go to a Redis stream to be read back."""
    settings = _routed_settings(amqp_url, redis_url, url=redis_url, name=unique_name)
    import stemtrace.capture.install as capture

    capture.uninstall(0.5)
    tasks = make_app(settings)
    try:
        with WorkerProcess(settings, "solo"):
            result = tasks.add.delay(1, 2)
            assert result.get(timeout=20) == 3
            capture.flush(5.0)
            deadline = time.monotonic() + 20
            events: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                events, _ = read_stream(redis_url, unique_name)
                if any(e["type"] == "task.succeeded" for e in events):
                    break
                time.sleep(0.2)
        _check_routed(events, result.id, settings.queue, tmp_path)
    finally:
        capture.uninstall(0.5)
        with Connection(amqp_url) as conn:
            channel = conn.default_channel
            deletes: tuple[Callable[[], object], ...] = (
                lambda: channel.queue_delete(settings.queue),
                lambda: channel.exchange_delete(settings.conf["task_queues"][settings.queue]["exchange"]),
            )
            for delete in deletes:
                try:
                    delete()
                except Exception:
                    pass
        client = redis.Redis.from_url(redis_url)
        client.delete(unique_name)
        client.close()


def test_protocol_1_chain_steps_are_chain_edges(redis_url: str, tmp_path: Path) -> None:
    """Under ``task_protocol = 1`` Celery sends a chain's next steps as link callbacks: they are
    drawn as a chain, and a user's own ``link=`` stays a link."""
    from celery import chain

    settings = AppSettings(broker_url=redis_url, backend_url=redis_url, conf={"task_protocol": 1})
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["chain"] = chain(t.add.s(1, 2), t.add.s(3), t.add.s(4)).apply_async()
        holder["link"] = t.add.apply_async((5, 6), link=t.tsum.s())
        return holder["chain"]

    with Recorder(pool="solo", settings=settings) as recorder:
        events = recorder.record(scenario, settle_s=1.5)
        assert holder["chain"].get(timeout=10) == 10
    last = holder["chain"]
    ids = [last.parent.parent.id, last.parent.id, last.id]
    graph = _listed(events, tmp_path, f"/api/workflows/{ids[0]}")
    edges = {(e["source"], e["target"]): e["kind"] for e in graph["edges"]}
    assert edges.get((ids[0], ids[1])) == "chain" and edges.get((ids[1], ids[2])) == "chain", edges
    assert "link" not in edges.values()
    # A user's link=: a callback (Celery sends it no parent id under protocol 1, so the server
    # cannot place its run; it must not pass for a chain step either).
    (published,) = [
        e for e in events if e["type"] == "task.published" and e["task"]["id"] == holder["link"].id
    ]
    canvas = published["data"]["canvas"]
    assert canvas["chain"] == [] and [c["name"] for c in canvas["callbacks"]] == ["t.tsum"]
