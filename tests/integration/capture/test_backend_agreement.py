"""Every way a task ends, as stemtrace shows it and as Celery's own result backend records it.

One real prefork worker (Redis broker, Redis result backend, both isolated by key prefix) runs
each failure mode the issue lists: an error, a huge error, an unknown task, a result the
backend cannot encode, soft and hard time limits, a killed child, ``Reject(requeue=False)``,
``Ignore``, an ``acks_late`` task whose child is killed and which the broker delivers again,
a revoked and an expired task, and a chain stopped by a ``Reject``. The events the library sent
are stored by the server's real ingest path and read back through the HTTP API; each task's
state and exception type must be what the backend says (``LOST`` is stemtrace's name for a
failure whose process died), and no workflow with dropped work rolls up to SUCCESS. It runs on
the pinned Celery, on the oldest supported one and on Celery 5.6 (``scripts/test``), with a
Redis and a RabbitMQ broker.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import chain
from kombu.connection import Connection
from tests.support import AppSettings, Recorder

from stemtrace.capture import celery_compat as compat
from stemtrace.core.events import decode_event
from stemtrace.server import create_app
from stemtrace.server.store import open_store

with warnings.catch_warnings():  # starlette warns that its httpx-based client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

# A backend state and the states stemtrace may show for it. Celery stores nothing for a task
# that raised ``Ignore`` or ``Reject`` (the backend says PENDING): stemtrace says which.
AGREES = {
    "SUCCESS": {"SUCCESS"},
    "FAILURE": {"FAILURE", "LOST"},
    "REVOKED": {"REVOKED"},
    "REJECTED": {"REJECTED"},
    "IGNORED": {"IGNORED"},
}


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def rec(request: pytest.FixtureRequest, redis_url: str, amqp_url: str) -> Iterator[Recorder]:
    """A prefork worker on Redis or on RabbitMQ (events then go to a Redis stream of their own);
    the result backend is Redis either way."""
    if request.param == "redis":
        settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    else:
        stream = f"st_events_{uuid.uuid4().hex[:10]}"
        settings = AppSettings(
            broker_url=amqp_url, backend_url=redis_url, options={"url": redis_url, "name": stream}
        )
    try:
        with Recorder(pool="prefork", concurrency=2, settings=settings) as recorder:
            yield recorder
    finally:
        if request.param == "rabbitmq":
            with Connection(amqp_url) as conn:
                try:
                    conn.default_channel.queue_delete(settings.queue)
                except Exception:
                    pass


def _backend_type(result: Any) -> str | None:
    exc: Any = result.result
    if not isinstance(exc, BaseException):
        return None
    if type(exc).__name__ == "UnpickleableExceptionWrapper":
        return f"{getattr(exc, 'exc_module', '')}.{getattr(exc, 'exc_cls_name', '')}"
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _settle(results: dict[str, Any], timeout_s: float = 30.0) -> None:
    """Wait until every result the backend will ever hold is there (Ignore/Reject hold none)."""
    deadline = time.monotonic() + timeout_s
    for result in results.values():
        while not result.ready() and time.monotonic() < deadline:
            time.sleep(0.1)


def _shown(events: list[dict[str, Any]], tmp_path: Path) -> tuple[TestClient, Any]:
    store = open_store(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    store.apply([decode_event(e) for e in events], {}, time.time())
    return TestClient(create_app(store=store, ingest=False)), store


def test_every_ending_agrees_with_the_result_backend(rec: Recorder, tmp_path: Path) -> None:
    holder: dict[str, Any] = {}
    marker = str(tmp_path / "die_once.marker")

    def scenario(t: Any) -> Any:
        holder["error"] = t.fail.delay("plain")
        holder["huge_error"] = t.huge_fail.delay(300_000)
        holder["unknown"] = t.app.send_task("t.nope", queue=rec.settings.queue)
        holder["unencodable_result"] = t.unencodable_result.delay()
        holder["soft_time_limit"] = t.soft_limited.delay(5)
        holder["reject"] = t.rejector.delay()
        holder["ignore"] = t.ignorer.delay()
        holder["expired"] = t.add.apply_async((1, 1), expires=dt.datetime.now(dt.timezone.utc))
        holder["revoked"] = t.add.apply_async((2, 2), countdown=3)
        t.app.control.revoke(holder["revoked"].id)
        holder["success"] = t.add.delay(3, 3)
        _settle({k: r for k, r in holder.items() if k not in ("reject", "ignore")})  # no result, before 5.7
        # A child that dies takes with it the events it had not sent yet (up to the library's
        # flush interval): the killers run one by one once the others' events are out.
        time.sleep(1.0)
        for key, start in (
            ("killed_child", t.killer.delay),
            ("hard_time_limit", lambda: t.hard_limited.delay(10)),
            ("acks_late_redelivered", lambda: t.die_once.delay(marker)),
        ):
            holder[key] = start()
            _settle({key: holder[key]})
        return None

    events = rec.record(scenario, settle_s=0.5)
    _settle(holder)
    events += rec.events(settle_s=2.0)
    client, store = _shown(events, tmp_path)
    seen: dict[str, tuple[str, str | None, str, str | None]] = {}
    try:
        for key, result in holder.items():
            body = client.get(f"/api/tasks/{result.id}").json()
            seen[key] = (result.state, _backend_type(result), body.get("state"), body.get("exception_type"))
    finally:
        client.close()
        store.close()
    wrong = []
    for key, (b_state, b_type, s_state, s_type) in seen.items():
        if key in ("reject", "ignore"):
            # Celery stores nothing for them before 5.7 (PENDING); whatever it stores, the
            # work was dropped and stemtrace says how.
            want = {"reject": {"REJECTED", "FAILURE"}, "ignore": {"IGNORED"}}[key]
            if s_state not in want or b_state == "SUCCESS":
                wrong.append(f"{key}: backend {b_state}, stemtrace {s_state}")
            continue
        if s_state not in AGREES.get(b_state, set()):
            wrong.append(f"{key}: backend {b_state}, stemtrace {s_state}")
        if b_state == "FAILURE" and s_type != b_type:
            wrong.append(f"{key}: backend raised {b_type}, stemtrace shows {s_type}")
    assert not wrong, "\n".join([f"Celery {compat.CELERY_VERSION}", *wrong, repr(seen)])
    assert seen["acks_late_redelivered"][0] == "SUCCESS"


def test_work_dropped_in_a_chain_never_rolls_up_to_success(rec: Recorder, tmp_path: Path) -> None:
    """A chain stopped by ``Reject(requeue=False)`` or ``Ignore`` and one whose step's child
    is killed: the backend never records the rest; the workflow is not SUCCESS."""
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["reject"] = chain(t.add.s(1, 1), t.rejector.si(), t.add.si(5, 5)).apply_async()
        holder["ignore"] = chain(t.add.s(1, 1), t.ignorer.si(), t.add.si(5, 5)).apply_async()
        _settle({k: r.parent.parent for k, r in holder.items()})
        time.sleep(1.5)  # the ignored and rejected steps' events out before a child dies
        # The killed step first: a child that dies loses the events it had not sent yet, so a
        # step that finished in the same child just before would be lost with it (see
        # docs/research/celery-internals.md, "a killed child's unsent events").
        holder["killed"] = chain(t.killer.si(), t.add.si(5, 5)).apply_async()
        return holder["killed"].parent  # the killed step: the main process records its loss

    events = rec.record(scenario, settle_s=3.0)
    client, store = _shown(events, tmp_path)
    try:
        for key, last in holder.items():
            # The last step never ran: the backend knows nothing of it, or (5.7, and a failed
            # step on any version) marks it failed with the step that stopped the chain.
            assert last.state in ("PENDING", "FAILURE"), key
            head = last.parent if key == "killed" else last.parent.parent
            assert head.state == ("FAILURE" if key == "killed" else "SUCCESS"), key
            page = client.get(f"/api/workflows/{head.id}").json()
            want = {"reject": "FAILURE", "ignore": "REVOKED", "killed": "FAILURE"}[key]
            assert page["state"] == want, (key, compat.CELERY_VERSION, page["counts"])
            (node,) = [n for n in page["nodes"] if n["id"] == last.id]
            assert node["state"] == "SKIPPED", (key, node)
    finally:
        client.close()
        store.close()


# -- a child killed right after a task ----------------------------------------------------
KILLED_PAIRS = 12


@pytest.fixture(scope="module")
def lone_child(redis_url: str) -> Iterator[Recorder]:
    """One prefork child that takes one message at a time: the task sent after another runs in
    the same process, straight after it."""
    settings = AppSettings(
        broker_url=redis_url, backend_url=redis_url, conf={"worker_prefetch_multiplier": 1}
    )
    with Recorder(pool="prefork", concurrency=1, settings=settings) as recorder:
        yield recorder


def test_a_task_that_finished_keeps_its_outcome_when_its_child_is_killed_next(
    lone_child: Recorder, tmp_path: Path
) -> None:
    """Task A finishes (a success, or a failure), then task B SIGKILLs the same child a few
    milliseconds later, before the child's publisher thread has sent A's events (it sends every
    flush interval). Celery got A's outcome from the child before B started: the result backend
    says SUCCESS or FAILURE, and so must stemtrace, every time; B is LOST (WorkerLostError)."""
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        for i in range(KILLED_PAIRS):
            holder[f"A{i}"] = t.add.delay(i, i) if i % 2 == 0 else t.fail.delay(f"pair {i}")
            holder[f"B{i}"] = t.sigkill.delay()
        _settle(holder, timeout_s=180.0)
        return None

    events = lone_child.record(scenario, timeout_s=240.0, settle_s=1.0)
    client, store = _shown(events, tmp_path)
    wrong = []
    try:
        for key, result in holder.items():
            body = client.get(f"/api/tasks/{result.id}").json()
            b_state, b_type = result.state, _backend_type(result)
            s_state, s_type = body.get("state"), body.get("exception_type")
            if s_state not in AGREES.get(b_state, set()) or (b_state == "FAILURE" and s_type != b_type):
                wrong.append(f"{key}: backend {b_state} {b_type}, stemtrace {s_state} {s_type}")
            elif b_state == "SUCCESS" and body["attempts"][-1]["runtime_ms"] is None:
                wrong.append(f"{key}: no runtime, though Celery measured it")  # (not for a failure)
    finally:
        client.close()
        store.close()
    assert [r.state for k, r in holder.items() if k.startswith("B")] == ["FAILURE"] * KILLED_PAIRS
    assert not wrong, "\n".join([f"Celery {compat.CELERY_VERSION}", *wrong])


def test_a_child_that_ends_itself_sends_its_own_outcomes_only(redis_url: str) -> None:
    """A child recycled after ``max_tasks_per_child`` flushes its events before it exits: the
    main process adds nothing for its tasks (no ``task.ready``), whose state is the child's."""
    settings = AppSettings(
        broker_url=redis_url, backend_url=redis_url, conf={"worker_max_tasks_per_child": 1}
    )
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        for i in range(3):
            holder[str(i)] = t.add.delay(i, i)
        _settle(holder)
        time.sleep(6.0)  # billiard reaps exited children on a 5 s timer
        return None

    with Recorder(pool="prefork", concurrency=1, settings=settings) as rec:
        events = rec.record(scenario, settle_s=1.0)
    mine = [e for e in events if e.get("task", {}).get("id") in {r.id for r in holder.values()}]
    assert {e["type"] for e in mine} >= {"task.started", "task.succeeded"}
    assert [e for e in mine if e["type"] == "task.ready"] == []
    assert [r.state for r in holder.values()] == ["SUCCESS"] * 3
