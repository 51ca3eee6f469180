"""The Celery internals the capture path reads, checked against the installed Celery.

The suite also runs on the oldest supported Celery (``scripts/test``): each fact is asserted
for the version at hand, so a Celery that moved an attribute fails here, not in a user's worker.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import celery
import pytest
from celery import Celery
from celery.exceptions import NotRegistered
from celery.utils.serialization import UnpickleableExceptionWrapper, get_pickleable_exception
from kombu.entity import Exchange, Queue

from stemtrace.capture import celery_compat as compat


def test_the_version_is_read() -> None:
    assert tuple(int(p) for p in celery.__version__.split(".")[:2]) == compat.CELERY_VERSION
    assert compat.CELERY_VERSION >= (5, 3)


class _Locked(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message, threading.Lock())


def test_an_unpicklable_error_is_named_as_the_user_raised_it() -> None:
    wrapped = get_pickleable_exception(_Locked("boom"))  # what Celery's trace hands task_failure
    assert isinstance(wrapped, UnpickleableExceptionWrapper)
    kind, text = compat.exception_identity(wrapped)
    assert kind == f"{__name__}._Locked"
    assert "boom" in text


def test_plain_errors_and_their_carriers() -> None:
    assert compat.exception_identity(ValueError("x")) == ("builtins.ValueError", "x")
    from billiard.einfo import ExceptionInfo

    try:
        raise KeyError("k")
    except KeyError:
        info = ExceptionInfo()
    assert compat.exception_identity(info) == ("builtins.KeyError", "'k'")


def test_an_unknown_task_is_not_registered_as_the_backend_records_it() -> None:
    kind, text = compat.not_registered("proj.gone")
    assert kind == "celery.exceptions.NotRegistered"
    assert text == str(NotRegistered("proj.gone"))


def test_the_running_request_is_read_off_celerys_stack() -> None:
    app = Celery("compat", set_as_current=False)

    @app.task(name="compat.t", bind=True)
    def t(self: Any) -> Any:
        return compat.request_of(self)

    assert compat.request_of(t) is t.request  # no request pushed: the property's answer
    t.push_request(id="outer")
    try:
        t.push_request(id="inner")
        try:
            assert compat.request_of(t).id == "inner" == t.request.id
        finally:
            t.pop_request()
        assert compat.request_of(t).id == "outer"
    finally:
        t.pop_request()


def test_a_picklable_error_stays_itself() -> None:
    err = ValueError("fine")
    assert pickle.loads(pickle.dumps(err)).args == err.args
    assert compat.exception_identity(get_pickleable_exception(err))[0] == "builtins.ValueError"


_MEDIA = Exchange("media", type="topic")
_QUEUES = [
    Queue("images", _MEDIA, routing_key="image.#"),
    Queue("video", _MEDIA, routing_key="video.*"),
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue("audit", Exchange("fan", type="fanout")),
]


@pytest.mark.parametrize(
    ("exchange", "routing_key", "queue"),
    [
        ("", "celery", "celery"),  # Celery's own route to a direct queue: the default exchange
        ("", "anything", "anything"),
        ("media", "image.compress", "images"),
        (_MEDIA, "image.thumb.small", "images"),
        ("media", "video.encode", "video"),
        ("media", "video.encode.hd", None),  # "*" is one word
        ("media", "text.x", None),
        ("celery", "celery", "celery"),
        ("fan", "whatever", "audit"),
        ("nowhere", "celery", None),
        ("media", None, None),
    ],
)
def test_the_routed_queue_is_found_by_binding(exchange: Any, routing_key: Any, queue: str | None) -> None:
    assert compat.routed_queue(_QUEUES, exchange, routing_key) == queue


def test_the_apps_queues_include_task_queues() -> None:
    app = Celery("compat-q", set_as_current=False)
    app.conf.task_queues = _QUEUES
    names = {q.name for q in compat.app_queues(app)}
    assert {"images", "video", "celery", "audit"} <= names
