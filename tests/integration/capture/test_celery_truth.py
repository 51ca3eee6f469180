"""What stemtrace shows matches what Celery did, on a real prefork worker, through the server's API.

Each test runs a task on a real worker (Redis broker and result backend), reads the events the
library sent, folds them in a real SQLite store and reads the task back through the HTTP API,
comparing with what Celery itself logs or its result backend records.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import AppSettings, Recorder

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
    store = open_store(f"sqlite:///{tmp_path / 'truth.db'}")
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
