"""What the worker's main process gets from a prefork child, checked against the installed Celery
(and, through ``scripts/test``, the oldest supported one and 5.6): the tuple a child returns for
each way a task ends, the ``Request`` class whose ``on_success`` receives it, and billiard's list
of live children with the exit status of one that was killed."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.app.trace import trace_task_ret
from celery.exceptions import Ignore, Reject
from celery.worker.request import Request, create_request_cls

from stemtrace.capture import celery_compat as compat


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    app = Celery("compat_prefork", broker="memory://", backend="cache+memory://", set_as_current=False)

    @app.task(name="p.ok", shared=False)
    def ok(x: int) -> int:
        return x * 2

    @app.task(name="p.boom", shared=False)
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="p.ignore", shared=False)
    def ignore() -> None:
        raise Ignore()

    @app.task(name="p.reject", shared=False)
    def reject() -> None:
        raise Reject("no", requeue=False)

    @app.task(name="p.retry", shared=False, bind=True)
    def retry(self: Any) -> None:
        raise self.retry(exc=KeyError("again"), countdown=60)

    yield app


def returned(app: Celery, name: str, *args: Any) -> Any:
    """What a pool child sends back for one task: ``trace_task_ret`` is what it runs."""
    task_id = str(uuid.uuid4())
    request = {"id": task_id, "task": name, "retries": 0, "delivery_info": {}}
    return trace_task_ret(name, task_id, request, (list(args), {}, None), None, None, app=app)


def test_a_success_carries_celerys_runtime(app: Celery) -> None:
    state, runtime, info = compat.pool_outcome(returned(app, "p.ok", 2)) or ("?", None, None)
    assert state == "SUCCESS" and info is None
    assert isinstance(runtime, float) and runtime >= 0.0


@pytest.mark.parametrize(
    ("name", "state", "exception_type"),
    [
        ("p.boom", "FAILURE", "builtins.ValueError"),
        ("p.ignore", "IGNORED", "celery.exceptions.Ignore"),
        ("p.reject", "REJECTED", "celery.exceptions.Reject"),
        ("p.retry", "RETRY", "celery.exceptions.Retry"),
    ],
)
def test_every_other_ending_is_told_apart(app: Celery, name: str, state: str, exception_type: str) -> None:
    outcome = compat.pool_outcome(returned(app, name))
    assert outcome is not None
    assert outcome[0] == state
    assert outcome[1] is None  # Celery measures no runtime for these: none is made up
    assert compat.exception_identity(outcome[2])[0] == exception_type
    if name == "p.boom":
        assert "ValueError: boom" in outcome[2].traceback


def test_a_child_that_was_exiting_is_not_an_outcome() -> None:
    from billiard.einfo import ExceptionInfo

    try:
        raise SystemExit(1)
    except SystemExit:
        info = ExceptionInfo()
    assert compat.pool_outcome((1, info, None)) is None
    assert compat.pool_outcome("garbage") is None


def test_each_task_types_request_class_has_the_on_success_the_pool_calls(app: Celery) -> None:
    class Pool:
        def apply_async(self, *args: Any, **kwargs: Any) -> None:
            return None

    cls = create_request_cls(Request, app.tasks["p.ok"], Pool(), "w@h", None, app=app)
    assert "on_success" in vars(cls)  # its own, not Request's: that is the one to wrap
    heard: list[Any] = []
    assert compat.wrap_pool_result(cls, lambda request, got: heard.append(got))
    assert not compat.wrap_pool_result(cls, lambda request, got: heard.append(got))  # once
    request = object.__new__(cls)
    with pytest.raises(AttributeError):  # the original runs on a bare instance and fails: after the note
        cls.on_success(request, (0, "4", 0.1))
    assert heard == [(0, "4", 0.1)]


def test_the_request_facts_are_where_they_are_read(app: Celery) -> None:
    class Pool:
        def apply_async(self, *args: Any, **kwargs: Any) -> None:
            return None

    cls = create_request_cls(Request, app.tasks["p.ok"], Pool(), "w@h", None, app=app)
    message = app.amqp.as_task_v2("abc", "p.ok", args=(1,), retries=2)
    from kombu.message import Message

    msg = Message(
        body=json.dumps(list(message.body)).encode(),
        headers=message.headers,
        content_type="application/json",
        content_encoding="utf-8",
    )
    request = cls(msg, app=app, task=app.tasks["p.ok"])
    request.on_accepted(4242, time.monotonic())
    task_id, name, retries, nesting, accepted_at, pid = compat.request_facts(request)
    assert (task_id, name, retries, nesting, pid) == ("abc", "p.ok", 2, 0, 4242)
    assert accepted_at is not None and abs(accepted_at - time.time()) < 5.0


def test_a_killed_child_leaves_the_pool_list_with_its_exit_status() -> None:
    from celery.concurrency.prefork import TaskPool

    pool = TaskPool(limit=1)
    pool.start()
    try:
        live = compat.pool_processes(pool)
        assert live is not None and len(live) == 1
        ((pid, process),) = live.items()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid in (compat.pool_processes(pool) or {}) and time.monotonic() < deadline:
            pool._pool._join_exited_workers()
            time.sleep(0.05)
        assert pid not in (compat.pool_processes(pool) or {})
        assert not compat.exited_cleanly(process)
    finally:
        pool.terminate()
