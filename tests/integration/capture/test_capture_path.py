"""Each hot event's row, zipped with its declared field names, says what Celery did.

Table-driven over ``capture.fields.SOURCES``: a real worker runs a plain task, a group and a task
spawned from another task's body; the rows the library sent (read raw from the Redis stream, not
expanded) are zipped with their batch's ``cols``, and every declared field of every hot event is
checked against what Celery's result, request or log says. A field declared but not checked, or
a value filled in another field's place, fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import group
from tests.support import AppSettings, Recorder

from stemtrace.capture import celery_compat as compat
from stemtrace.capture.fields import SOURCES
from stemtrace.core.wire import ROW_HEAD

pytestmark = pytest.mark.integration

Check = Callable[[Any], bool]


@pytest.fixture(scope="module")
def rec(redis_url: str) -> Iterator[Recorder]:
    with Recorder(pool="solo", settings=AppSettings(broker_url=redis_url, backend_url=redis_url)) as recorder:
        yield recorder


def _rows(rec: Recorder) -> dict[tuple[str, str], dict[str, Any]]:
    """Every row in the stream as ``{field: value}`` by ``(type, task id)``, named by its batch."""
    client: Any = redis.Redis.from_url(rec.settings.broker_url)
    try:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for _, fields in client.xrange(rec.settings.stream_key):
            batch = json.loads(fields[b"b"])
            for item in batch["events"]:
                if isinstance(item, list):
                    names = batch["cols"][item[0]]
                    values = item[len(ROW_HEAD) : len(ROW_HEAD) + len(names)]
                    out[(item[0], item[3])] = dict(zip(names, values, strict=True))
        return out
    finally:
        client.close()


def _at(low: float, high: float) -> Check:
    """An ISO-8601 time with its zone, between ``low`` and ``high`` (epoch seconds)."""

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        when = dt.datetime.fromisoformat(value)
        return when.tzinfo is not None and low <= when.timestamp() <= high

    return check


def _is(expected: Any) -> Check:
    return lambda value: value == expected and type(value) is type(expected)


def test_every_declared_field_of_every_hot_event_is_what_celery_did(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["plain"] = t.add.apply_async((1, 2), countdown=0.3, expires=600)
        holder["group"] = group(t.add.s(3, 3), t.add.s(4, 4)).apply_async()
        holder["spawner"] = t.spawner.delay(1)
        return holder["spawner"]

    sent = time.time()
    rec.record(scenario, settle_s=1.5)
    assert holder["plain"].get(timeout=10) == 3 and holder["group"].get(timeout=10) == [6, 8]
    (spawned_id,) = holder["spawner"].get(timeout=10)
    queue, pid, log = rec.settings.queue, rec.worker.proc.pid, rec.worker.log()  # type: ignore[union-attr]
    plain, spawner = holder["plain"].id, holder["spawner"].id
    gid, members = holder["group"].id, [r.id for r in holder["group"].results]

    def logged_runtime(value: Any) -> Check:
        if compat.CELERY_VERSION >= (5, 5):  # task_success carries Celery's own value
            return lambda runtime: runtime == pytest.approx(value, abs=1e-9)
        # Before, the library measures task_prerun to task_success: close to it, not it.
        return lambda runtime: isinstance(runtime, float) and runtime == pytest.approx(value, abs=0.01)

    def runtime_of(task_id: str) -> float:
        match = re.search(rf"\[{task_id}\] succeeded in ([0-9.e-]+)s", log)
        assert match is not None
        return float(match.group(1))

    # For each task: what each structural field must be, whatever the event.
    structure: dict[str, dict[str, Check]] = {
        plain: {
            "root_id": _is(plain),
            "parent_id": _is(None),
            "group_id": _is(None),
            "group_index": _is(None),
        },
        members[1]: {
            "root_id": _is(members[1]),
            "parent_id": _is(None),
            "group_id": _is(gid),
            "group_index": _is(1),
        },
        spawned_id: {
            "root_id": _is(spawner),
            "parent_id": _is(spawner),
            "group_id": _is(None),
            "group_index": _is(None),
        },
    }
    message: dict[str, dict[str, Check]] = {  # what the message says beyond structure
        plain: {
            "eta": _at(sent, sent + 30),
            "expires": _at(sent + 570, sent + 630),
            "publisher_task_id": _is(None),
        },
        members[1]: {"eta": _is(None), "expires": _is(None), "publisher_task_id": _is(None)},
        spawned_id: {"eta": _is(None), "expires": _is(None), "publisher_task_id": _is(spawner)},
    }
    routing = {"exchange": _is(""), "routing_key": _is(queue), "queue": _is(queue)}
    for task_id, shape in structure.items():
        expected: dict[str, dict[str, Check]] = {
            "task.published": {
                **shape,
                **message[task_id],
                **routing,
                "retries": _is(0),
                "replaced_task_nesting": _is(0),
                "shadow": _is(None),
                "ignore_result": _is(False),
                "beat": _is(None),  # not sent by celery beat
            },
            "task.received": {
                **shape,
                **{k: v for k, v in message[task_id].items() if k != "publisher_task_id"},
                **routing,
                "retries": _is(0),
                "replaced_task_nesting": _is(0),
                "redelivered": _is(False),
                "beat": _is(None),
            },
            # No tracing in this worker or its senders: no trace context in the headers.
            "task.started": {
                **shape,
                "retries": _is(0),
                "worker_pid": _is(pid),
                "traceparent": _is(None),
                "sentry_trace": _is(None),
            },
            "task.succeeded": {
                "retries": _is(0),
                "runtime": logged_runtime(runtime_of(task_id)),
                "handler_runtime": lambda v: isinstance(v, float) and 0.0 <= v < 1.0,
            },
        }
        rows = _rows(rec)
        for etype, checks in expected.items():
            assert set(checks) == set(SOURCES[etype]), f"{etype}: checked {sorted(checks)}"
            row = rows[(etype, task_id)]
            # The declared fields first, in order; the captured columns (args, result) follow.
            assert list(row)[: len(SOURCES[etype])] == list(SOURCES[etype])
            wrong = {name: row[name] for name, check in checks.items() if not check(row[name])}
            assert wrong == {}, f"{etype} of {task_id}: {wrong}"
