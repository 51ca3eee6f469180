"""A value read from the store at most once every ``ttl`` seconds, per store, refreshed in the
background so no request waits for it once there is a value.

For what ``/api/health`` and ``/metrics`` show that is costly to read and changes slowly
compared with how often they are asked (a load balancer's probe and Prometheus every few
seconds, the UI besides): the library processes' reports (sent every 30 s) and the stuck-task
gauges (a task is judged only after 60 s unchanged). Each use says its staleness in its
documentation.

Why in the background: the stuck gauges' reads take ~20-30 ms on PostgreSQL at 300,000 tasks
(475 ms cold), the library reports 7-20 ms; read by the request that found the value stale,
with every concurrent request waiting on the lock, they set ``/metrics``' p95 under 20 clients
(docs/benchmarks-server.md, "Health and metrics"). A stale value is now served while one thread
reads the next; only a value older than ``max_stale`` (the store failing for a while) is read
in the request again, so an unreachable store still shows as an error there.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from stemtrace.server.store import Store

T = TypeVar("T")
logger = logging.getLogger("stemtrace.server")


class PerStore(Generic[T]):
    """``compute(store)``, kept ``ttl`` seconds, then served while a thread reads it again (at
    most ``max_stale`` seconds old, by default three TTLs). With no value yet, one caller
    computes while the others wait."""

    def __init__(
        self,
        ttl: float,
        compute: Callable[[Store], T],
        clock: Callable[[], float] = time.monotonic,
        max_stale: float | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_stale = 3 * ttl if max_stale is None else max_stale
        self.compute = compute
        self.clock = clock
        self._found: weakref.WeakKeyDictionary[Store, tuple[float, T]] = weakref.WeakKeyDictionary()
        self._refreshing: weakref.WeakSet[Store] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # over ``_refreshing``

    def get(self, store: Store) -> T:
        """The value; raises what ``compute`` raises when it has to compute in this call."""
        found = self._found.get(store)
        if found is not None:
            age = self.clock() - found[0]
            if age < self.ttl:
                return found[1]
            if age < self.max_stale:
                self._refresh_later(store)
                return found[1]
        with self._lock:  # N requests arriving together read the store once
            found = self._found.get(store)
            if found is not None and self.clock() - found[0] < self.ttl:
                return found[1]
            return self._read(store)

    def refreshing(self, store: Store) -> bool:
        """Whether a background read for ``store`` is under way (for tests)."""
        with self._guard:
            return store in self._refreshing

    def _read(self, store: Store) -> T:
        value = self.compute(store)
        self._found[store] = (self.clock(), value)
        return value

    def _refresh_later(self, store: Store) -> None:
        with self._guard:
            if store in self._refreshing:
                return
            self._refreshing.add(store)
        threading.Thread(target=self._refresh, args=(store,), name="stemtrace-refresh", daemon=True).start()

    def _refresh(self, store: Store) -> None:
        try:
            with self._lock:
                self._read(store)
        except Exception as exc:  # kept: the stale value until ``max_stale``, then the request's error
            logger.debug("background refresh failed: %s", type(exc).__name__)
        finally:
            with self._guard:
                self._refreshing.discard(store)


class Recent(Generic[T]):
    """A value computed at most once every ``ttl`` seconds; callers arriving while it is being
    computed wait for that computation instead of starting their own.

    For ``/metrics``: a scrape costs 5-10 ms of CPU on PostgreSQL (a dozen roll-up reads and
    a few thousand lines), so 20 scrapers at once queued ~150 ms deep behind each other; they
    now share one rendering, at most ``METRICS_TTL_S`` old (docs/metrics.md, "Cost").
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._found: tuple[float, T] | None = None
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], T]) -> T:
        found = self._found
        if found is not None and self.clock() - found[0] < self.ttl:
            return found[1]
        with self._lock:
            found = self._found
            if found is not None and self.clock() - found[0] < self.ttl:
                return found[1]
            started = self.clock()
            value = compute()
            self._found = (started, value)  # as old as the moment its reads began
            return value
