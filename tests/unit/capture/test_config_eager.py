"""Eager mode and test suites: a test process never sends into a running server by accident.

Real Celery apps with ``task_always_eager`` on the machine's Redis; what reaches the broker is
read back from the stream and decoded, so "nothing was sent" is what the broker says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

import stemtrace
from stemtrace.capture import install as _install
from stemtrace.capture import state as _state
from stemtrace.core.wire import decode_batch


@pytest.fixture
def stream(redis_url: str, unique_name: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client, unique_name
    finally:
        _install.uninstall()
        client.delete(unique_name)
        client.close()


def _app(redis_url: str, *, eager: bool) -> Celery:
    app = Celery("eager-test", broker=redis_url, set_as_current=False)
    app.conf.task_always_eager = eager

    @app.task(name="eager.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    return app


def _sent(client: redis.Redis, key: str) -> list[tuple[str, str | None]]:
    """(event type, task id) of everything stemtrace put on the stream."""
    assert _install.flush(5.0)
    found: list[tuple[str, str | None]] = []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(key)  # type: ignore[assignment]
    for _entry_id, fields in entries:
        events, malformed = decode_batch(fields[b"b"])
        assert not malformed
        found.extend((e.type, e.task_id) for e in events)
    return found


def test_an_eager_app_sends_nothing_and_says_why_once(
    stream: tuple[redis.Redis, str], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, key = stream
    app = _app(redis_url, eager=True)
    with caplog.at_level(logging.INFO, logger="stemtrace.capture"):
        stemtrace.init(app, name=key)
        results = [app.tasks["eager.add"].delay(i, 1).get() for i in range(3)]
    assert results == [1, 2, 3]
    assert _sent(client, key) == []
    assert not client.exists(key)
    said = [r for r in caplog.records if r.name == "stemtrace.capture"]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "task_always_eager" in said[0].getMessage() and "STEMTRACE_ENABLED=true" in said[0].getMessage()
    assert _state.current() is None  # handlers now return at once


def test_eager_is_read_at_the_first_event_not_at_init(
    stream: tuple[redis.Redis, str], redis_url: str
) -> None:
    """Test settings are often applied after the app module (and its ``init``) was imported."""
    client, key = stream
    app = _app(redis_url, eager=False)
    stemtrace.init(app, name=key)
    app.conf.task_always_eager = True  # e.g. a conftest fixture, after import
    assert app.tasks["eager.add"].delay(2, 3).get() == 5
    assert _sent(client, key) == []


@pytest.mark.parametrize("how", ["option", "environment"])
def test_explicitly_enabled_captures_eager_tasks(
    stream: tuple[redis.Redis, str], redis_url: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, key = stream
    app = _app(redis_url, eager=True)
    if how == "option":
        stemtrace.init(app, name=key, enabled=True)
    else:
        monkeypatch.setenv("STEMTRACE_ENABLED", "true")
        stemtrace.init(app, name=key)
    result = app.tasks["eager.add"].delay(2, 3)
    assert result.get() == 5
    mine = [etype for etype, task_id in _sent(client, key) if task_id == result.id]
    assert "task.started" in mine and "task.succeeded" in mine


def test_enabled_false_connects_nothing(
    stream: tuple[redis.Redis, str], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe for a test suite that runs real workers: STEMTRACE_ENABLED=false."""
    client, key = stream
    monkeypatch.setenv("STEMTRACE_ENABLED", "false")
    app = _app(redis_url, eager=False)
    stemtrace.init(app, name=key)
    assert _state.current() is None
    with app.connection_for_write() as conn:
        app.tasks["eager.add"].apply_async((1, 2), connection=conn, queue=f"{key}.q")
    assert _sent(client, key) == []
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(f"{key}.q")


def test_a_non_eager_app_captures_by_default(stream: tuple[redis.Redis, str], redis_url: str) -> None:
    """The control: the same client code, not eager, does reach the stream."""
    client, key = stream
    app = _app(redis_url, eager=False)
    stemtrace.init(app, name=key)
    result = app.tasks["eager.add"].apply_async((1, 2), queue=f"{key}.q")
    assert ("task.published", result.id) in _sent(client, key)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(f"{key}.q")
