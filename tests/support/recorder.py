"""Record what stemtrace captures when a scenario runs on a real worker.

Events travel the zero-config path: the app's own Redis broker, into a stream
under the app's unique key prefix, which is read back here with ``XRANGE``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from tests.support.app import AppSettings, TaskKit, make_app
from tests.support.results import wait
from tests.support.wire import expand
from tests.support.worker import WorkerProcess

Scenario = Callable[[TaskKit], Any]


def read_stream(url: str, key: str, after: str = "-") -> tuple[list[dict[str, Any]], str]:
    """Every event in the stream after entry ``after``, and the last entry id read."""
    client: Any = redis.Redis.from_url(url)
    try:
        start = after if after == "-" else f"({after}"
        events: list[dict[str, Any]] = []
        last = after
        for entry_id, fields in client.xrange(key, min=start):
            events.extend(expand(json.loads(fields[b"b"])))
            last = entry_id.decode()
        return events, last
    finally:
        client.close()


def _wait(result: Any, timeout_s: float) -> None:
    if result is None or not hasattr(result, "ready"):
        return
    try:
        wait(result, timeout_s, propagate=False)
    except Exception:
        pass  # a timeout or a failure is part of what we record


class Recorder:
    """One instrumented worker shared by several recordings (start once, record many)."""

    def __init__(
        self,
        pool: str = "solo",
        concurrency: int = 2,
        settings: AppSettings | None = None,
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings or AppSettings()
        # Where the events are read back: the broker's Redis (the zero-config path), or the
        # Redis stream ``options["url"]``/``options["name"]`` name (a RabbitMQ broker).
        given = self.settings.options.get("url")
        self.events_url = str(given) if given else self.settings.broker_url
        self.events_key = str(self.settings.options["name"]) if given else self.settings.stream_key
        self.worker = WorkerProcess(self.settings, pool, concurrency=concurrency, env=worker_env)
        self.tasks: TaskKit | None = None
        self.worker_events: list[dict[str, Any]] = []  # worker.*/library.* seen so far
        self._last = "-"

    def __enter__(self) -> Recorder:
        import stemtrace.capture.install as capture

        capture.uninstall()  # one app per process: take over from any earlier recording
        self.tasks = make_app(self.settings)
        self.worker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import stemtrace.capture.install as capture

        self.worker.stop()
        capture.uninstall()
        for url in {self.events_url, self.settings.backend_url}:
            if not url.startswith("redis"):
                continue
            client = redis.Redis.from_url(url)
            try:
                keys = list(client.scan_iter(match=f"{self.settings.prefix}*", count=1000))
                if keys:
                    client.delete(*keys)
                if self.events_key != self.settings.stream_key:
                    client.delete(self.events_key)
            finally:
                client.close()

    def events(self, settle_s: float = 1.0, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Events that arrived since the last call, once the stream has been quiet ``settle_s``."""
        import stemtrace.capture.install as capture

        capture.flush(5.0)
        out: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got, self._last = read_stream(self.events_url, self.events_key, self._last)
            if got:
                out.extend(got)
                self.worker_events.extend(e for e in got if "task" not in e)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                break
            time.sleep(0.1)
        return out

    def record(
        self, scenario: Scenario, timeout_s: float = 30.0, settle_s: float = 1.0
    ) -> list[dict[str, Any]]:
        """Run ``scenario(tasks)``, wait for its result, return the events it produced."""
        assert self.tasks is not None, "use Recorder as a context manager"
        self.events(settle_s=0.2)  # discard what came before (worker.online, heartbeats)
        _wait(scenario(self.tasks), timeout_s)
        return self.events(settle_s=settle_s)


def record(scenario: Scenario, pool: str = "solo", **kwargs: Any) -> list[dict[str, Any]]:
    """One-shot: start a worker with ``pool``, run ``scenario``, return its events."""
    with Recorder(pool=pool, **kwargs) as rec:
        return rec.record(scenario)
