"""Built workflow graphs, kept as response bytes until the workflow changes.

Building the graph of a 10,000-task workflow takes a few hundred milliseconds, and a
UI polls it while the workflow runs. The key includes the workflow's ``version``,
which the store bumps whenever any of its tasks changes, so a stale graph is never
served: a changed workflow simply misses.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

Key = tuple[str, int, bool]  # (workflow id, version, plumbing)


class _Build:
    """One graph being built: the lock its requests queue on, and how many hold or wait for it."""

    __slots__ = ("lock", "requests")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0


class GraphCache:
    """An LRU of serialised graphs, bounded by total size."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Key, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[Key, _Build] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Key, body: bytes) -> None:
        if len(body) > self.max_bytes // 2:
            return  # one huge graph must not evict everything else
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            # Older versions of the same workflow can never be asked for again.
            for stale in [k for k in self._items if k[0] == key[0] and k[2] == key[2]]:
                self._size -= len(self._items.pop(stale))
            self._items[key] = body
            self._size += len(body)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)

    @contextmanager
    def building(self, key: Key) -> Iterator[None]:
        """One build of a graph at a time: requests that miss it together wait for the first
        build and then find it cached, instead of each building it (a 10,000-task build holds
        tens of megabytes until its response is written, and costs ~100 ms of CPU)."""
        with self._lock:
            build = self._building.get(key)
            if build is None:
                build = self._building[key] = _Build()
            build.requests += 1
        try:
            with build.lock:
                yield
        finally:
            with self._lock:
                build.requests -= 1
                if build.requests == 0:
                    del self._building[key]

    def peek(self, key: Key) -> bytes | None:
        """``get`` without counting a hit or a miss: the second look of a request that waited."""
        with self._lock:
            return self._items.get(key)


# -- building without the cyclic garbage collector ---------------------------------------------------

_gc_lock = threading.Lock()
_gc_builders = 0
_gc_paused_by_us = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run a big graph build with the cyclic garbage collector off.

    A 10,000-task build allocates ~100,000 container objects (records, nodes, dicts) that all
    live until the response is written, so the collector runs dozens of times, and its full
    collections walk the whole heap: close to half of a cold build. Nothing a build allocates
    forms reference cycles, so reference counting frees it all anyway. Overlapping builds share
    one pause; the collector comes back when the last one ends, unless it was already off
    (an application that disabled it keeps it disabled).
    """
    global _gc_builders, _gc_paused_by_us
    with _gc_lock:
        if _gc_builders == 0:
            _gc_paused_by_us = gc.isenabled()
            if _gc_paused_by_us:
                gc.disable()
        _gc_builders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_builders -= 1
            if _gc_builders == 0 and _gc_paused_by_us:
                _gc_paused_by_us = False
                gc.enable()
