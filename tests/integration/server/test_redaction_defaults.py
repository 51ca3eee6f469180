"""Redaction by default, end to end: secrets in arguments, results and exceptions never leave
the worker's process.

A real Celery worker (instrumented by ``stemtrace.init`` with default options) runs a task
called with secrets in its string arguments and keyword arguments, which returns them, and
a task that raises an exception whose message holds them (so the traceback does too). The
events stream in Redis is read raw before the server consumes it; then the server ingests it
into SQLite; the secrets appear in none of the three: the broker stream, the database
(every row, dumped), the API's answers. The places they were show ``[redacted]``.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from pathlib import Path
from typing import cast

import pytest
import redis
from server_events import TestClient
from server_harness import cleanup_source, wait_for
from test_real_workers import Running, events_source
from tests.support import AppSettings
from tests.support.results import wait as wait_result

from stemtrace.server import create_app

pytestmark = pytest.mark.integration


def test_secrets_reach_neither_broker_nor_database_nor_api(tmp_path: Path, redis_url: str) -> None:
    tag = uuid.uuid4().hex[:12]
    secrets = {
        "password": f"pw{tag}A",
        "bearer": f"bearer{tag}0123",
        "url": f"urlpw{tag}",
        "api_key": f"key{tag}",
        "basic": base64.b64encode(f"ops:basic{tag}".encode()).decode(),
        "exc_password": f"excpw{tag}",
        "exc_url": f"excurl{tag}",
    }
    settings = AppSettings(broker_url=redis_url, backend_url=redis_url)
    source = events_source(settings)
    db = tmp_path / "redact.db"
    try:
        with Running(settings) as running:
            t = running.tasks
            assert t is not None
            echoed = t.echo.delay(
                f"password={secrets['password']}",  # short: the fast path for plain arguments
                f"Authorization: Bearer {secrets['bearer']}",
                "ok",
                dsn=f"redis://app:{secrets['url']}@cache:6379/0",
                note=f'{{"api_key": "{secrets["api_key"]}", "header": "Basic {secrets["basic"]}"}}',
            )
            failed = t.fail.delay(
                f"login to postgresql://app:{secrets['exc_url']}@db/x refused: "
                f"password={secrets['exc_password']}"
            )
            wait_result(echoed, 30)
            with pytest.raises(ValueError):
                wait_result(failed, 30)
            running.flush()
        # The events as the broker holds them, before any server reads them.
        entries = cast(  # redis-py's shape without decode_responses
            "list[tuple[bytes, dict[bytes, bytes]]]", redis.Redis.from_url(redis_url).xrange(source.name)
        )
        raw = b"".join(value for _, fields in entries for value in fields.values())
        assert echoed.id.encode() in raw and failed.id.encode() in raw  # the events are there
        _assert_clean(raw.decode("utf-8", "replace"), secrets, "broker stream")

        app = create_app(store_url=f"sqlite:///{db}", events=source)
        with TestClient(app) as c:
            wait_for(lambda: _state(c, failed.id) == "FAILURE" and _state(c, echoed.id) == "SUCCESS")
            answers = [
                c.get("/api/tasks", params={"limit": 1000}).text,
                c.get(f"/api/tasks/{echoed.id}").text,
                c.get(f"/api/tasks/{failed.id}").text,
                c.get(f"/api/workflows/{echoed.id}").text,
                c.get(f"/api/workflows/{failed.id}").text,
                c.get("/api/failures").text,
            ]
            _assert_clean("\n".join(answers), secrets, "API")
            detail = c.get(f"/api/tasks/{echoed.id}").json()
            failure = c.get(f"/api/tasks/{failed.id}").json()
        shown = json.dumps(detail)
        assert "password=[redacted]" in shown and "Authorization: [redacted]" in shown
        assert "redis://app:[redacted]@cache:6379/0" in shown
        assert '\\"api_key\\": [redacted]' in shown and "Basic [redacted]" in shown
        assert "ok" in shown  # innocent arguments are kept
        failure_text = json.dumps(failure)
        assert "postgresql://app:[redacted]@db/x" in failure_text
        assert "password=[redacted]" in failure_text
        assert "Traceback" in failure_text  # the traceback was captured, and masked
        with sqlite3.connect(db) as conn:
            dump = "\n".join(conn.iterdump())
        assert echoed.id in dump
        _assert_clean(dump, secrets, "database")
    finally:
        cleanup_source(source)


def _state(c: TestClient, task_id: str) -> str | None:
    r = c.get(f"/api/tasks/{task_id}")
    return r.json()["state"] if r.status_code == 200 else None


def _assert_clean(text: str, secrets: dict[str, str], where: str) -> None:
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secrets {leaked} found in the {where}"
