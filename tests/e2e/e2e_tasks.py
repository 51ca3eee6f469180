"""The Celery app the end-to-end tests run in a real worker, instrumented with ``stemtrace.init``.

Configured through the environment so the worker subprocess and the test process agree:
E2E_BROKER, E2E_QUEUE, E2E_EVENTS_URL and E2E_EVENTS_NAME (unique per run). They are
passed as options rather than ``STEMTRACE_*`` variables so nothing leaks into other tests.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import stemtrace

BROKER = os.environ.get("E2E_BROKER", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("E2E_QUEUE", "stemtrace_e2e")

app = Celery("e2e", broker=BROKER, backend=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    result_expires=600,
    worker_prefetch_multiplier=8,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
stemtrace.init(
    app,
    url=os.environ.get("E2E_EVENTS_URL", BROKER),
    name=os.environ.get("E2E_EVENTS_NAME", "stemtrace.e2e"),
)


@app.task(name="e2e.add")
def add(x: int, y: int = 0) -> int:
    return x + y


@app.task(name="e2e.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task(name="e2e.explode")
def explode(value: int) -> int:
    raise ValueError(f"cannot handle {value}")


@app.task(name="e2e.picky")
def picky(kind: str) -> None:
    """Fails with a different exception type depending on ``kind`` (the Failures drill-down)."""
    if kind == "key":
        raise KeyError(kind)
    raise ValueError(kind)


@app.task(name="e2e.noop")
def noop(i: int) -> int:
    return i


@app.task(name="e2e.echo")
def echo(text: str, note: str = "", password: str = "") -> str:
    return text


@app.task(name="e2e.flaky", bind=True, max_retries=3, default_retry_delay=0.2)
def flaky(self, fail_times: int) -> str:  # type: ignore[no-untyped-def]
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError(f"attempt {self.request.retries + 1} failed"), countdown=0.2)
    return "ok"


@app.task(name="e2e.parent")
def parent(n: int) -> int:
    for i in range(n):
        add.delay(i, i)
    time.sleep(0.05)
    return n


@app.task(name="e2e.shaky")
def shaky(i: int) -> int:
    """Fails for one member in ten: a fan-out whose few failures must be findable in one click."""
    if i % 10 == 3:
        raise RuntimeError(f"item {i} is shaky")
    return i


@app.task(name="e2e.verbose")
def verbose() -> None:
    """Fails with a message and traceback longer than the library keeps: shown as truncated."""
    raise ValueError("x" * 40_000)


class NamedSummary(app.Task):  # type: ignore[misc,name-defined]
    """A task that names its own argument summary for every send: Celery's ``argsrepr``, which
    stemtrace shows instead of the arguments (the digest on same-named siblings, the call)."""

    def apply_async(self, args=None, kwargs=None, **options):  # type: ignore[no-untyped-def]
        if args:
            options.setdefault("argsrepr", f"(parcel={args[0]})")
            options.setdefault("kwargsrepr", "{}")
        return super().apply_async(args, kwargs, **options)


@app.task(name="e2e.ship", base=NamedSummary)
def ship(parcel: int, weight: float) -> int:
    return parcel


# Read only by the `celery beat` that tests/e2e/test_beat_page.py starts: one entry every second,
# one that fails every two seconds.
app.conf.beat_schedule = {
    "e2e-tick": {"task": "e2e.tick", "schedule": 1.0, "args": (1,)},
    "e2e-tick-fails": {"task": "e2e.tick", "schedule": 2.0, "args": (0,)},
}


@app.task(name="e2e.tick")
def tick(n: int) -> int:
    if not n:
        raise ValueError("a beat tick that fails")
    return n
