"""Retries, failures and every way a task can end badly, on a real prefork worker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support import AppSettings, Recorder
from tests.support.results import wait as wait_result

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rec(redis_url: str) -> Iterator[Recorder]:
    settings = AppSettings(
        broker_url=redis_url, backend_url=redis_url, options={"redact_patterns": [r"sk_\w+"]}
    )
    with Recorder(pool="prefork", concurrency=2, settings=settings) as recorder:
        yield recorder


def _of(events: list[dict[str, Any]], etype: str, task_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == etype and e.get("task", {}).get("id") == task_id]


def test_retries_reuse_the_id_and_count_attempts(rec: Recorder) -> None:
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.flaky.delay(2)))
    task_id = holder["r"].id
    # Processes flush on their own clocks: the stream's order across them means nothing.
    assert sorted(e["data"]["retries"] for e in _of(events, "task.published", task_id)) == [0, 1, 2]
    retried = sorted(_of(events, "task.retried", task_id), key=lambda e: e["data"]["retries"])
    assert [e["data"]["retries"] for e in retried] == [0, 1]
    assert retried[0]["data"]["exception_type"] == "builtins.ValueError"
    assert retried[0]["data"]["eta"] is not None
    assert len(_of(events, "task.started", task_id)) == 3
    assert _of(events, "task.postrun", task_id) == []  # RETRY and SUCCESS have events of their own
    assert _of(events, "task.succeeded", task_id)[0]["data"]["retries"] == 2


def test_failure_reports_type_redacted_message_and_traceback(rec: Recorder) -> None:
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.fail.delay("password=hunter2 key sk_live_1")))
    (failed,) = _of(events, "task.failed", holder["r"].id)
    data = failed["data"]
    assert data["exception_type"] == "builtins.ValueError"
    assert data["origin"] == "child" and data["retries"] == 0
    assert "hunter2" not in data["exception"] and "sk_live_1" not in data["exception"]
    assert "[redacted]" in data["exception"]
    assert "ValueError" in data["traceback"]
    assert _of(events, "task.postrun", holder["r"].id) == []  # task.failed already reports it
    # The argument itself is redacted in the publish event too, by the same pattern.
    (published,) = _of(events, "task.published", holder["r"].id)
    assert "sk_live_1" not in str(published["data"]["args"])


def test_reject_and_ignore_show_in_postrun(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> None:
        holder["rej"] = t.rejector.delay()
        holder["ign"] = t.ignorer.delay()

    events = rec.record(scenario, settle_s=2.0)
    assert _of(events, "task.postrun", holder["rej"].id)[0]["data"]["state"] == "REJECTED"
    assert _of(events, "task.postrun", holder["ign"].id)[0]["data"]["state"] == "IGNORED"


def test_unknown_task_is_reported_by_the_main_process(rec: Recorder) -> None:
    holder: dict[str, Any] = {}
    events = rec.record(lambda t: holder.setdefault("r", t.app.send_task("t.nope", queue=rec.settings.queue)))
    (unknown,) = _of(events, "task.unknown", holder["r"].id)
    assert unknown["task"]["name"] == "t.nope" and unknown["src"]["proc"] == "main"
    assert unknown["data"]["exception_type"]


def test_revoke_terminate_and_expiry(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["expired"] = t.add.apply_async((1, 1), expires=dt.datetime.now(dt.timezone.utc))
        holder["long"] = t.sleeper.delay(30)
        time.sleep(1.5)  # let it start
        t.app.control.revoke(holder["long"].id, terminate=True)
        return holder["long"]

    events = rec.record(scenario, settle_s=2.0)
    (revoked,) = _of(events, "task.revoked", holder["long"].id)
    assert revoked["data"]["terminated"] is True and revoked["data"]["signum"] == 15
    assert _of(events, "task.postrun", holder["long"].id)[0]["data"]["state"] is None
    (expired,) = _of(events, "task.revoked", holder["expired"].id)
    assert expired["data"]["expired"] is True


def test_hard_time_limit_and_killed_child_fail_in_the_main_process(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["limited"] = t.hard_limited.delay(10)
        holder["killed"] = t.killer.delay()
        wait_result(holder["limited"], 30, propagate=False)
        return holder["killed"]

    events = rec.record(scenario, settle_s=2.0)
    (limited,) = _of(events, "task.failed", holder["limited"].id)
    assert limited["data"]["origin"] == "main" and limited["src"]["proc"] == "main"
    assert limited["data"]["exception_type"].endswith("TimeLimitExceeded")
    assert _of(events, "task.postrun", holder["limited"].id)[0]["data"]["state"] is None
    (killed,) = _of(events, "task.failed", holder["killed"].id)
    assert killed["data"]["exception_type"].endswith("WorkerLostError")
    assert _of(events, "task.postrun", holder["killed"].id) == []


def test_unserializable_huge_and_non_utf8_arguments(rec: Recorder) -> None:
    holder: dict[str, Any] = {}

    def scenario(t: Any) -> Any:
        holder["r"] = t.echo.delay("x" * 1_000_000, b"\xff\xfe".decode("utf-8", "surrogateescape"), user_id=7)
        return holder["r"]

    events = rec.record(scenario)
    (published,) = _of(events, "task.published", holder["r"].id)
    args, kwargs = published["data"]["args"], published["data"]["kwargs"]
    assert args[0]["__stemtrace_truncated__"] is True and args[0]["size"] == 1_000_000
    assert args[1]["__stemtrace_repr__"]
    assert kwargs == {"user_id": 7}
    assert _of(events, "task.succeeded", holder["r"].id)
