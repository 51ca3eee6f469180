"""Beat-sent tasks name their schedule entry: Celery's real ``beat.Service`` and ``Scheduler``
send due entries over an in-memory broker; the published events are read off the library's
in-process transport. The Celery facts it relies on are asserted per version, so the suite on
the oldest supported Celery (``scripts/test``) checks them there too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, signals
from celery.beat import ScheduleEntry, Scheduler, Service

from stemtrace.capture import beat, install
from stemtrace.capture import celery_compat as compat
from stemtrace.core import events as ev
from stemtrace.core.wire import decode_batch
from stemtrace.transport.inproc import forget, queue_named


@pytest.fixture
def app() -> Iterator[Celery]:
    install.uninstall(0.5)
    app = Celery("beat-capture", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {}

    @app.task(name="beat.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    try:
        yield app
    finally:
        install.uninstall(0.5)


def _service(app: Celery) -> Service:
    service = Service(app, scheduler_cls=Scheduler)
    service.scheduler  # noqa: B018 - Service.start builds it before it sends beat_init
    return service


def _entry(app: Celery, name: str) -> ScheduleEntry:
    return ScheduleEntry(name=name, task="beat.add", schedule=10.0, args=(1, 2), app=app)


def _published(name: str) -> list[ev.Event]:
    install.flush(5.0)
    out: list[ev.Event] = []
    for payload in queue_named(name).take(1000, 0.1):
        events, errors = decode_batch(payload)
        assert not errors
        out.extend(e for e in events if e.type == ev.TASK_PUBLISHED)
    return out


def test_a_due_entry_is_named_on_its_published_event(app: Celery) -> None:
    name = f"beat-{uuid.uuid4().hex[:8]}"
    install.install(app, url=f"inproc://{name}")
    try:
        service = _service(app)
        signals.beat_init.send(sender=service)  # as Service.start does, with the scheduler built
        service.scheduler.apply_entry(_entry(app, "nightly-sum"), producer=None)
        app.tasks["beat.add"].delay(3, 4)  # sent by the beat process, but by no entry
        events = _published(name)
    finally:
        forget(name)
    by_args = {tuple(e.data["args"]): e for e in events}
    assert by_args[(1, 2)].data["beat"] == "nightly-sum"
    assert by_args[(1, 2)].src.proc == "beat"
    assert by_args[(3, 4)].data["beat"] is None


def test_a_client_process_never_names_an_entry(app: Celery) -> None:
    name = f"beat-{uuid.uuid4().hex[:8]}"
    install.install(app, url=f"inproc://{name}")
    try:
        app.tasks["beat.add"].apply_async((5, 6), headers={compat.BEAT_ENTRY_HEADER: "x"})
        events = _published(name)
    finally:
        forget(name)
    assert [e.data["beat"] for e in events] == [None]  # the headers are read in beat (and by workers)


def test_the_hook_is_on_the_instance_and_installed_once(app: Celery) -> None:
    service = _service(app)
    assert beat.hook(service)
    assert not beat.hook(service)  # already wrapped
    assert "apply_async" in vars(service.scheduler)  # the class is untouched
    other = Scheduler(app=app, lazy=True)
    assert not getattr(other.apply_async, "_stemtrace_wrapped", False)


def test_a_scheduler_without_apply_async_is_left_alone() -> None:
    class Odd:
        scheduler = object()

    assert not beat.hook(Odd())
    assert not beat.hook(object())


def test_celery_marks_beat_messages_from_5_7(app: Celery) -> None:
    """Celery 5.7's ``Scheduler.apply_async`` adds ``celery_beat_task: True``; 5.3 to 5.6 add nothing."""
    seen: list[dict[str, Any]] = []

    def record(headers: Any = None, **_: Any) -> None:
        seen.append(dict(headers or {}))

    signals.before_task_publish.connect(record, weak=False, dispatch_uid="beat-facts")
    try:
        Scheduler(app=app, lazy=True).apply_async(_entry(app, "facts"), advance=False)
    finally:
        signals.before_task_publish.disconnect(dispatch_uid="beat-facts")
    assert len(seen) == 1
    if compat.CELERY_VERSION >= (5, 7):
        assert seen[0].get(compat.BEAT_MARK_HEADER) is True
    else:
        assert compat.BEAT_MARK_HEADER not in seen[0]
    assert compat.beat_mark(seen[0]) == (True if compat.CELERY_VERSION >= (5, 7) else None)


def test_beat_marks_read_from_headers() -> None:
    assert compat.beat_mark({"periodic_task_name": "nightly"}) == "nightly"
    assert compat.beat_mark({"periodic_task_name": "nightly", "celery_beat_task": True}) == "nightly"
    assert compat.beat_mark({"celery_beat_task": True}) is True
    assert compat.beat_mark({"celery_beat_task": "yes"}) is None
    assert compat.beat_mark({"periodic_task_name": ""}) is None
    assert compat.beat_mark(None) is None
