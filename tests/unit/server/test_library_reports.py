"""The library reports ``/api/health`` and ``/metrics`` show are read from a real store at most
once per TTL: a new report shows once the TTL has passed and a background read is done; no
request waits for that read, and a value too old (the store failing) is read in the request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TypeVar

import pytest
from server_events import EventFactory

from stemtrace.server.library_reports import LibraryReports
from stemtrace.server.store import Store, open_store
from stemtrace.server.ttl_cache import PerStore, Recent

NOW = 1_790_100_000.0


def test_a_new_report_shows_once_the_ttl_has_passed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = [100.0]
    cache = PerStore(5.0, lambda s: LibraryReports(s.library_reports()), clock=lambda: now[0])
    a, b = EventFactory(host="ha"), EventFactory(host="hb")
    store.apply([a.event("library.health", None, None, 0, sent=10, dropped=1, errors=0)], {}, NOW)
    first = cache.get(store)
    assert (len(first.reports), first.sent, first.dropped) == (1, 10, 1)
    store.apply([b.event("library.health", None, None, 1, sent=5, dropped=0, errors=2)], {}, NOW)
    now[0] += 4.9
    assert cache.get(store) is first  # within the TTL: the reading before
    now[0] += 0.2
    assert cache.get(store) is first  # stale: served at once, read again in the background
    second = _after_refresh(cache, store)
    assert (len(second.reports), second.sent, second.dropped, second.errors) == (2, 15, 1, 2)
    assert [r["host"] for r in second.reports] == ["hb", "ha"]  # newest first
    store.close()


T = TypeVar("T")


def _after_refresh(cache: PerStore[T], store: Store) -> T:
    deadline = time.monotonic() + 10
    while cache.refreshing(store) and time.monotonic() < deadline:
        time.sleep(0.01)
    return cache.get(store)


def test_no_request_waits_for_a_slow_read_once_there_is_a_value(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = [100.0]
    release = threading.Event()
    reads: list[int] = []

    def slow(s: object) -> int:
        reads.append(1)
        if len(reads) > 1:
            assert release.wait(10)
        return len(reads)

    cache: PerStore[int] = PerStore(5.0, slow, clock=lambda: now[0])
    assert cache.get(store) == 1
    now[0] += 6
    started = time.monotonic()
    assert [cache.get(store) for _ in range(20)] == [1] * 20  # the read is blocked meanwhile
    assert time.monotonic() - started < 1.0
    assert cache.refreshing(store) and len(reads) == 2  # one background read, not twenty
    release.set()
    assert _after_refresh(cache, store) == 2
    store.close()


def test_a_value_past_max_stale_is_read_in_the_request_and_its_error_raised(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = [100.0]
    fail = [False]

    def read(s: object) -> float:
        if fail[0]:
            raise RuntimeError("store down")
        return now[0]

    cache: PerStore[float] = PerStore(5.0, read, clock=lambda: now[0], max_stale=15.0)
    assert cache.get(store) == 100.0
    fail[0] = True
    now[0] += 6
    assert cache.get(store) == 100.0  # stale, and the background read fails
    _after_refresh(cache, store)
    now[0] += 10  # 16 s old: past max_stale
    with pytest.raises(RuntimeError, match="store down"):
        cache.get(store)
    fail[0] = False
    assert cache.get(store) == 116.0
    store.close()


def test_the_exposition_has_one_series_per_process_and_field() -> None:
    reports = [
        {"host": 'h"1', "pid": 7, "inst": "i1", "sent": 3, "dropped": 0, "errors": 1},
        {"host": "h2", "pid": 8, "inst": "i2", "sent": 1e20},
    ]
    lines = LibraryReports(reports).exposition()
    assert lines[:2] == [
        "# HELP stemtrace_library_sent_total Events the library sent, by process (latest report).",
        "# TYPE stemtrace_library_sent_total counter",
    ]
    assert 'stemtrace_library_sent_total{host="h\\"1",pid="7",inst="i1"} 3' in lines
    assert 'stemtrace_library_sent_total{host="h2",pid="8",inst="i2"} 1e+20' in lines
    assert 'stemtrace_library_errors_total{host="h2",pid="8",inst="i2"} 0' in lines
    assert len(lines) == 3 * (2 + 2)
    assert LibraryReports([]).exposition()[2].startswith("# HELP stemtrace_library_dropped_total")


def test_recent_scrapes_share_one_rendering_and_a_later_one_renders_again() -> None:
    now = [0.0]
    recent: Recent[int] = Recent(1.0, clock=lambda: now[0])
    renders: list[int] = []

    def render() -> int:
        renders.append(1)
        return len(renders)

    assert [recent.get(render) for _ in range(5)] == [1] * 5
    now[0] += 0.99
    assert recent.get(render) == 1
    now[0] += 0.02
    assert recent.get(render) == 2 and len(renders) == 2
