"""Shared test helpers: real Celery apps, real worker subprocesses, an event recorder.

Nothing here is mocked: workers are ``celery worker`` subprocesses on the machine's
real Redis/RabbitMQ, instrumented by ``stemtrace.init`` exactly as a user's would be.

Make ``tests.support`` importable by running pytest from the repository root with
``src`` and the root on the path (``PYTHONPATH=src:. pytest`` or the ``pythonpath``
pytest setting).

Typical uses::

    from tests.support import Recorder, record, WorkerProcess, make_app

    # one-shot: start a worker, run a canvas, return every captured event (dicts)
    events = record(lambda t: chain(t.add.s(1, 2), t.add.s(3)).apply_async(), pool="solo")

    # several scenarios on one shared worker (what a test module should do)
    with Recorder(pool="prefork", concurrency=2) as rec:
        events = rec.record(lambda t: t.add.delay(1, 2))
        published = [e for e in events if e["type"] == "task.published"]

    # a bare worker for your own app settings (env goes to the worker process;
    # STEMTRACE_* variables configure the library there)
    with WorkerProcess(settings, pool="threads", env={"STEMTRACE_URL": url}) as worker: ...

``t`` (a :class:`TaskKit`) holds the app and its tasks: ``add``, ``tsum``,
``flaky``, ``fail``, ``sleeper``, ``rejector``, ``ignorer``, ``spawner``,
``replacer``, ``hard_limited``, ``killer``, ``echo``, ``big_result``. The helpers only
use Celery APIs that exist from 5.3 to 5.7, so golden fixtures can be recorded
from a second virtualenv with an older Celery (run it with that venv's python).
"""

from __future__ import annotations

from tests.support.app import AppSettings, TaskKit, make_app
from tests.support.recorder import Recorder, read_stream, record
from tests.support.worker import WorkerProcess

__all__ = [
    "AppSettings",
    "Recorder",
    "TaskKit",
    "WorkerProcess",
    "make_app",
    "read_stream",
    "record",
]
