"""Signal handlers never raise into Celery: a bug in one is counted and logged once; the
short cut to a task's running request gives what ``task.request`` gives."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from stemtrace.capture import outcomes, signals
from stemtrace.capture import state as _state
from stemtrace.capture.config import CaptureConfig
from stemtrace.transport import TransportConfig


class BrokenHeaders(dict[str, Any]):
    """Message headers whose every lookup fails."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken headers")


class BrokenTask:
    """A task whose name cannot be read."""

    @property
    def name(self) -> str:
        raise RuntimeError("broken task")


# One call per handler that makes its body raise (the per-task handlers guard themselves inline,
# the others through ``guarded``).
BROKEN_CALLS: list[tuple[Callable[..., None], dict[str, Any]]] = [
    (signals.on_after_task_publish, {"headers": BrokenHeaders(id="t1"), "body": ((), {}, None)}),
    (signals.on_task_received, {"request": None}),
    (signals.on_task_prerun, {"task_id": ["not hashable"], "task": None}),
    (signals.on_task_postrun, {"task_id": "t1", "task": BrokenTask(), "state": "SUCCESS"}),
    (outcomes.on_task_revoked, {"request": None}),
]


@pytest.fixture
def installed() -> Iterator[_state.State]:
    st = _state.State(CaptureConfig(), lambda: TransportConfig(url="memory://"), app=None)
    st.emitter()
    _state.set_current(st)
    try:
        yield st
    finally:
        _state.set_current(None)


@pytest.mark.parametrize(("handler", "kwargs"), BROKEN_CALLS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_failing_handler_is_counted_and_logged_once(
    installed: _state.State,
    caplog: pytest.LogCaptureFixture,
    handler: Callable[..., None],
    kwargs: dict[str, Any],
) -> None:
    with caplog.at_level(logging.WARNING, logger="stemtrace.capture"):
        handler(signal=None, sender=None, **kwargs)
        handler(signal=None, sender=None, **kwargs)
    assert installed.emitter().errors == 2
    assert len(installed.emitter().buffer) == 0
    warnings = [r for r in caplog.records if r.name == "stemtrace.capture"]
    assert len(warnings) == 1 and handler.__name__ in warnings[0].getMessage()


@pytest.mark.parametrize(("handler", "kwargs"), BROKEN_CALLS, ids=lambda v: getattr(v, "__name__", ""))
def test_handlers_do_nothing_before_init(handler: Callable[..., None], kwargs: dict[str, Any]) -> None:
    assert _state.current() is None
    handler(signal=None, sender=None, **kwargs)  # no state: returns before touching its arguments


def test_request_of_a_running_task_is_its_request() -> None:
    app = Celery("request-of", broker="memory://", set_as_current=False)
    seen: list[tuple[Any, Any]] = []

    @app.task(bind=True, name="t.outer")
    def outer(self: Any) -> None:
        seen.append((signals._request_of(self), self.request))
        self.push_request(id="nested-id")  # as Celery does when a task calls itself eagerly
        seen.append((signals._request_of(self), self.request))
        self.pop_request()
        seen.append((signals._request_of(self), self.request))

    outer.apply(task_id="outer-id", retries=2)
    assert [(fast is slow, fast.id) for fast, slow in seen] == [
        (True, "outer-id"),
        (True, "nested-id"),
        (True, "outer-id"),
    ]
    assert seen[0][0].retries == 2


def test_request_of_falls_back_to_the_property() -> None:
    app = Celery("request-of-idle", broker="memory://", set_as_current=False)

    @app.task(name="t.idle")
    def idle() -> None:
        pass

    assert signals._request_of(idle) is idle.request  # no request pushed: Celery's default one

    class OtherStack:
        """A task whose stack is not Celery's ``_LocalStack`` (``USE_FAST_LOCALS``, say)."""

        request_stack = object()
        request = "the property's answer"

    assert signals._request_of(OtherStack()) == "the property's answer"
    assert signals._request_of(None) is None
