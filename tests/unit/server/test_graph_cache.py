"""The graph cache: bounded LRU of response bytes, and one build per graph at a time."""

from __future__ import annotations

import threading
import time

from stemtrace.server.graph_cache import GraphCache


def test_requests_missing_together_build_a_graph_once() -> None:
    cache = GraphCache()
    key = ("wf", 3, False)
    builds: list[str] = []
    served: list[bytes] = []
    start = threading.Barrier(4)

    def request() -> None:
        start.wait(5)
        if cache.get(key) is None:
            with cache.building(key):
                body = cache.peek(key)
                if body is None:
                    builds.append(threading.current_thread().name)
                    time.sleep(0.2)  # a slow build: the others arrive meanwhile
                    body = b"graph"
                    cache.put(key, body)
                served.append(body)
        else:
            served.append(b"hit")

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(builds) == 1
    assert sorted(served) == [b"graph"] * 4
    assert cache._building == {}  # nothing left behind


def test_other_graphs_do_not_wait_for_a_build() -> None:
    cache = GraphCache()
    entered = threading.Event()
    release = threading.Event()

    def slow() -> None:
        with cache.building(("a", 1, False)):
            entered.set()
            release.wait(5)

    t = threading.Thread(target=slow)
    t.start()
    assert entered.wait(5)
    began = time.monotonic()
    with cache.building(("b", 1, False)):
        pass
    assert time.monotonic() - began < 1.0
    release.set()
    t.join(5)


def test_the_cache_is_bounded_by_size_and_drops_stale_versions() -> None:
    cache = GraphCache(max_bytes=100)
    cache.put(("a", 1, False), b"x" * 40)
    cache.put(("a", 2, False), b"y" * 40)  # a newer version replaces the old one
    assert cache.peek(("a", 1, False)) is None and cache.get(("a", 2, False)) == b"y" * 40
    cache.put(("b", 1, False), b"z" * 40)
    cache.put(("c", 1, False), b"w" * 40)  # over 100 bytes: the least recently used goes
    assert cache.peek(("a", 2, False)) is None
    assert len(cache) == 2
    cache.put(("d", 1, False), b"v" * 60)  # more than half the budget: never cached
    assert cache.peek(("d", 1, False)) is None
