"""Which schedule entry sent a task: learned in the beat process, stated on its ``task.published``.

Celery says little about a beat-sent message: nothing at all before 5.7, a bare
``celery_beat_task`` header from 5.7 on, and only django-celery-beat names the entry
(``periodic_task_name``). The beat process knows exactly, while it publishes: ``beat_init``
tells this process is beat and hands over the ``Service``, whose scheduler sends every due entry
through ``apply_async(entry, ...)`` (``celery_compat.around_apply_async``). For the duration of
that call this thread's current entry is set, and the publish handler copies its name into the
event's ``beat`` field. Without capture in beat, the markers the message carries stand in
(``celery_compat.beat_mark``), read by the publish and receive handlers alike.
"""

from __future__ import annotations

import threading
from typing import Any

from stemtrace.capture import celery_compat as compat

_current = threading.local()  # .entry: the name of the entry being sent in this thread


def _enter(entry: Any) -> Any:
    previous = getattr(_current, "entry", None)
    name = getattr(entry, "name", None)
    _current.entry = name if isinstance(name, str) and name else None
    return previous


def _leave(previous: Any) -> None:
    _current.entry = previous


def hook(service: Any) -> bool:
    """Follow the entries ``service`` (a ``celery.beat.Service``) sends; ``True`` when hooked."""
    scheduler = compat.beat_scheduler(service)
    return scheduler is not None and compat.around_apply_async(scheduler, _enter, _leave)


def published_mark(headers: Any) -> str | bool | None:
    """The ``beat`` field of a message published in the beat process: the entry being sent,
    else what its headers say (a message beat sent from outside ``apply_async``)."""
    name = getattr(_current, "entry", None)
    return name if name is not None else compat.beat_mark(headers)
