"""A value read from the store at most once every ``ttl`` seconds, per store.

For what ``/api/health`` and ``/metrics`` show that is costly to read and changes slowly
compared with how often they are asked (a load balancer's probe and Prometheus every few
seconds, the UI besides): the library processes' reports (sent every 30 s) and the stuck-task
gauges (a task is judged only after 60 s unchanged). Each use says its staleness in its
documentation.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from stemtrace.server.store import Store

T = TypeVar("T")


class PerStore(Generic[T]):
    """``compute(store)``, kept ``ttl`` seconds; one caller recomputes while the others wait."""

    def __init__(
        self, ttl: float, compute: Callable[[Store], T], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.compute = compute
        self.clock = clock
        self._found: weakref.WeakKeyDictionary[Store, tuple[float, T]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _fresh(self, store: Store) -> tuple[float, T] | None:
        found = self._found.get(store)
        return found if found is not None and self.clock() - found[0] < self.ttl else None

    def get(self, store: Store) -> T:
        """The value, at most ``ttl`` seconds old; raises what ``compute`` raises (nothing kept)."""
        found = self._fresh(store)
        if found is not None:
            return found[1]
        with self._lock:  # N requests arriving together read the store once
            found = self._fresh(store)
            if found is not None:
                return found[1]
            value = self.compute(store)
            self._found[store] = (self.clock(), value)
            return value
