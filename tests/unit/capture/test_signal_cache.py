"""``init`` turns on Celery's receiver cache for the per-task signals; every receiver, ours and
the application's, still gets exactly the signals a fresh lookup would give it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, signals

from stemtrace.capture import install
from stemtrace.capture import state as _state

PER_TASK = [getattr(signals, name) for name in install.PER_TASK_SIGNALS]


@pytest.fixture
def app() -> Iterator[Celery]:
    install.uninstall(0.5)  # whatever an earlier test left installed: start from Celery's default
    app = Celery("signal-cache", broker="memory://", set_as_current=False)
    try:
        yield app
    finally:
        install.uninstall(0.5)
        assert _state.current() is None


def _tasks(app: Celery) -> tuple[Any, Any]:
    @app.task(name="cache.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="cache.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    return add, mul


def test_init_caches_the_per_task_signals_and_uninstall_restores_celerys_default(app: Celery) -> None:
    assert not any(s.use_caching for s in PER_TASK)
    install.install(app, url="memory://")
    assert all(s.use_caching and isinstance(s.sender_receivers_cache, install.SenderCache) for s in PER_TASK)
    assert not signals.task_failure.use_caching  # sent for failures only: left as Celery has it
    install.uninstall(0.5)
    assert not any(s.use_caching for s in PER_TASK)
    assert all(type(s.sender_receivers_cache) is dict and not s.sender_receivers_cache for s in PER_TASK)


def test_signal_cache_off_leaves_celerys_default(app: Celery, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMTRACE_SIGNAL_CACHE", "off")
    install.install(app, url="memory://")
    assert not any(s.use_caching for s in PER_TASK)


def test_a_cache_someone_else_configured_is_left_alone(app: Celery) -> None:
    theirs: dict[Any, Any] = {}
    saved = signals.task_prerun.sender_receivers_cache
    signals.task_prerun.use_caching = True
    signals.task_prerun.sender_receivers_cache = theirs
    try:
        install.install(app, url="memory://")
        assert signals.task_prerun.sender_receivers_cache is theirs
        install.uninstall(0.5)
        assert signals.task_prerun.use_caching and signals.task_prerun.sender_receivers_cache is theirs
    finally:
        signals.task_prerun.use_caching = False
        signals.task_prerun.sender_receivers_cache = saved


def test_receivers_connected_later_for_one_sender_or_any_are_called_as_without_cache(app: Celery) -> None:
    add, mul = _tasks(app)
    install.install(app, url="memory://")
    add.apply((1, 2))  # fills the cache for ``add`` before anyone else connects
    calls: list[tuple[str, str]] = []

    def for_add(sender: Any = None, **_: Any) -> None:
        calls.append(("add only", sender.name))

    def for_any(sender: Any = None, **_: Any) -> None:
        calls.append(("any", sender.name))

    signals.task_prerun.connect(for_add, sender=add, weak=False)
    signals.task_prerun.connect(for_any, weak=False)
    try:
        add.apply((1, 2))
        mul.apply((3, 4))
        assert sorted(calls) == [("add only", "cache.add"), ("any", "cache.add"), ("any", "cache.mul")]
        signals.task_prerun.disconnect(for_any)
        calls.clear()
        add.apply((1, 2))
        mul.apply((3, 4))
        assert calls == [("add only", "cache.add")]
    finally:
        signals.task_prerun.disconnect(for_add, sender=add)
        signals.task_prerun.disconnect(for_any)


def test_a_dead_weak_receiver_is_not_called(app: Celery) -> None:
    add, _ = _tasks(app)
    # A long flush interval keeps the events in the buffer, where the test counts them (with the
    # default 0.2 s the publisher thread could send them first).
    install.install(app, url="memory://", flush_interval=3600)
    calls: list[str] = []

    class Listener:
        def on_prerun(self, sender: Any = None, **_: Any) -> None:
            calls.append(sender.name)

    listener = Listener()
    signals.task_prerun.connect(listener.on_prerun)  # weak, as Celery's default
    add.apply((1, 2))
    assert calls == ["cache.add"]  # cached now, weak reference included
    del listener
    gc.collect()
    add.apply((1, 2))
    assert calls == ["cache.add"]
    assert _state.current() is not None
    started = [e for e in _state.current().emitter().buffer if e[0] == "task.started"]  # type: ignore[union-attr]
    assert len(started) == 2  # our own receiver was called both times


def test_the_cache_is_bounded() -> None:
    cache = install.SenderCache()
    for i in range(install.MAX_CACHED_SENDERS):
        cache[f"task-{i}"] = [i]
    assert len(cache) == install.MAX_CACHED_SENDERS
    cache["one more"] = ["x"]
    assert dict(cache) == {"one more": ["x"]}
