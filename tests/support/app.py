"""A Celery app factory with the tasks the capture tests and recordings need.

The same function builds the app in the test process (to send tasks) and in the
worker subprocess (``tests.support.worker_app`` reads :class:`AppSettings` from the
environment), so both sides agree on broker, queue and key prefix.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

from celery import Celery
from celery.exceptions import Ignore, Reject

REDIS_URL = os.environ.get("STEMTRACE_TEST_REDIS", "redis://127.0.0.1:6379/0")
SETTINGS_ENV = "STEMTRACE_TEST_APP"


@dataclass(frozen=True)
class AppSettings:
    """Everything that makes one test's app unique and isolated."""

    broker_url: str = REDIS_URL
    backend_url: str = REDIS_URL
    prefix: str = field(default_factory=lambda: f"st_{uuid.uuid4().hex[:10]}:")
    queue: str = field(default_factory=lambda: f"st_q_{uuid.uuid4().hex[:10]}")
    instrument: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # stemtrace.init(**options)
    conf: dict[str, Any] = field(default_factory=dict)  # extra Celery settings

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> AppSettings:
        return cls(**json.loads(os.environ[SETTINGS_ENV]))

    @property
    def stream_key(self) -> str:
        """Where the zero-config Redis path puts events (the app's key prefix + name)."""
        return self.prefix + str(self.options.get("name", "stemtrace.events"))


class UnpicklableError(Exception):
    """An error holding what pickle refuses (a lock): Celery hands its signals and result
    backend an ``UnpickleableExceptionWrapper`` instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message, threading.Lock())


class TaskKit(SimpleNamespace):
    """The app and its tasks, passed to scenario callables."""

    app: Celery


def make_app(settings: AppSettings, *, init: bool | None = None) -> TaskKit:
    """Build the app; ``init`` (default ``settings.instrument``) calls ``stemtrace.init``."""
    app = Celery(f"st_{settings.queue}", broker=settings.broker_url, backend=settings.backend_url)
    conf: dict[str, Any] = {
        "task_default_queue": settings.queue,
        "result_backend_transport_options": {"global_keyprefix": settings.prefix},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "result_expires": 600,
    }
    if settings.broker_url.startswith(("redis", "rediss")):
        conf["broker_transport_options"] = {"global_keyprefix": settings.prefix}
    conf.update(settings.conf)
    app.conf.update(conf)

    # ``shared=False``: tests build many apps in one process, and a shared task would be added to
    # every app finalized later, where two copies of one name warn (an error under the test suite).
    @app.task(name="t.add", shared=False)
    def add(x: int, y: int = 0) -> int:
        return x + y

    @app.task(name="t.tsum", shared=False)
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="t.flaky", shared=False, bind=True, max_retries=5)
    def flaky(self: Any, fail_times: int) -> str:
        if self.request.retries < fail_times:
            raise self.retry(exc=ValueError(f"attempt {self.request.retries} failed"), countdown=0.1)
        return "ok"

    @app.task(name="t.fail", shared=False)
    def fail(message: str) -> None:
        raise ValueError(message)

    @app.task(name="t.sleeper", shared=False)
    def sleeper(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @app.task(name="t.rejector", shared=False)
    def rejector() -> None:
        raise Reject("not for me", requeue=False)

    @app.task(name="t.ignorer", shared=False)
    def ignorer() -> None:
        raise Ignore()

    @app.task(name="t.chain_stopper", shared=False, bind=True)
    def chain_stopper(self: Any, x: int) -> int:
        """Stops the chain it is in by clearing ``request.chain`` (a common idiom): the steps
        after it are never sent, and nothing says so."""
        self.request.chain = None
        return x

    @app.task(name="t.soft_limited", shared=False, soft_time_limit=0.5)
    def soft_limited(seconds: float) -> None:
        time.sleep(seconds)  # SoftTimeLimitExceeded is raised in here

    @app.task(name="t.die_once", shared=False, acks_late=True, reject_on_worker_lost=True)
    def die_once(marker: str) -> str:
        """The first delivery kills its process (the marker file says it ran); the message is
        acknowledged late, so the broker delivers it again and the second run succeeds."""
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write("ran")
            os._exit(9)
        return "second delivery"

    @app.task(name="t.unencodable_result", shared=False)
    def unencodable_result() -> Any:
        return threading.Lock()  # neither JSON nor pickle can store it in the result backend

    @app.task(name="t.huge_fail", shared=False)
    def huge_fail(message_bytes: int) -> None:
        raise RuntimeError("x" * message_bytes)

    @app.task(name="t.spawner", shared=False)
    def spawner(n: int) -> list[str]:
        return [add.delay(i, i).id for i in range(n)]

    @app.task(name="t.replacer", shared=False, bind=True)
    def replacer(self: Any, x: int) -> Any:
        return self.replace(add.s(x, 1))

    @app.task(name="t.hard_limited", shared=False, time_limit=1)
    def hard_limited(seconds: float) -> None:
        time.sleep(seconds)

    @app.task(name="t.killer", shared=False)
    def killer() -> None:
        os._exit(3)

    @app.task(name="t.sigkill", shared=False)
    def sigkill() -> None:
        """Its process is killed as the OOM killer or ``kill -9`` would: no handler, no flush."""
        os.kill(os.getpid(), signal.SIGKILL)

    @app.task(name="t.echo", shared=False)
    def echo(*args: Any, **kwargs: Any) -> Any:
        return {"args": list(args), "kwargs": sorted(kwargs)}

    @app.task(name="t.big_result", shared=False)
    def big_result(n: int) -> str:
        return "x" * n

    @app.task(name="t.deep_fail", shared=False)
    def deep_fail(depth: int, message_bytes: int) -> None:
        """Raise from ``depth`` nested frames a message of ``message_bytes`` (a deep stack)."""

        # Two functions in turn: Python folds a frame repeated line for line into one.
        def down_a(n: int) -> None:
            if n <= 0:
                raise ValueError("invalid input: " + "m" * message_bytes)
            down_b(n - 1)

        def down_b(n: int) -> None:
            down_a(n - 1)

        down_a(depth)

    @app.task(name="t.unpicklable_fail", shared=False)
    def unpicklable_fail(message: str) -> None:
        raise UnpicklableError(message)

    base_task: Any = app.Task

    class SlowSuccessHandler(base_task):  # type: ignore[misc]
        """Its ``on_success`` takes time: Celery's runtime of the task excludes it."""

        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            time.sleep(0.4)

    @app.task(name="t.slow_handler", shared=False, base=SlowSuccessHandler)
    def slow_handler(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    if settings.instrument if init is None else init:
        import stemtrace

        stemtrace.init(app, **settings.options)
    return TaskKit(
        app=app,
        add=add,
        tsum=tsum,
        flaky=flaky,
        fail=fail,
        sleeper=sleeper,
        rejector=rejector,
        ignorer=ignorer,
        spawner=spawner,
        replacer=replacer,
        hard_limited=hard_limited,
        killer=killer,
        sigkill=sigkill,
        echo=echo,
        big_result=big_result,
        deep_fail=deep_fail,
        slow_handler=slow_handler,
        unpicklable_fail=unpicklable_fail,
        chain_stopper=chain_stopper,
        soft_limited=soft_limited,
        die_once=die_once,
        unencodable_result=unencodable_result,
        huge_fail=huge_fail,
    )
