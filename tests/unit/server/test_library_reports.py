"""The library reports ``/api/health`` and ``/metrics`` show are read from a real store at most
once per TTL: a new report shows once the TTL has passed, never later."""

from __future__ import annotations

from pathlib import Path

from server_events import EventFactory

from stemtrace.server.library_reports import LibraryReports
from stemtrace.server.store import open_store
from stemtrace.server.ttl_cache import PerStore

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
    second = cache.get(store)
    assert (len(second.reports), second.sent, second.dropped, second.errors) == (2, 15, 1, 2)
    assert [r["host"] for r in second.reports] == ["hb", "ha"]  # newest first
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
