"""What ingest tells /api/health: how far behind it is, and why it is degraded."""

from __future__ import annotations

import uuid

from stemtrace.server.ingest import Ingestor
from stemtrace.server.ingest_stats import LAG_DEGRADED_S, IngestStats
from stemtrace.server.store import SqlStore
from stemtrace.transport import TransportConfig

NOW = 1_790_100_000.0


def test_lag_seconds_counts_from_the_last_drained_poll_by_the_server_clock() -> None:
    stats = IngestStats(started_at=NOW - 500)
    assert stats.lag_seconds(NOW) is None  # the broker has not said what waits
    stats.lag = 0
    assert stats.lag_seconds(NOW) == 0.0
    stats.lag = 1200
    assert stats.lag_seconds(NOW) == 500.0  # never drained since start
    stats.caught_up_at = NOW - 30
    assert stats.lag_seconds(NOW) == 30.0


def test_problems_name_what_is_wrong(store: SqlStore) -> None:
    ingestor = Ingestor(store, TransportConfig(url=f"inproc://{uuid.uuid4().hex}"), clock=lambda: NOW)
    assert ingestor.problems(NOW) == []
    ingestor.stats.lag, ingestor.stats.caught_up_at = 50_000, NOW - LAG_DEGRADED_S - 1
    assert any("behind" in p for p in ingestor.problems(NOW))
    ingestor.stats.lag = 0
    ingestor._degraded("store", OSError(28, "No space left on device"))
    (problem,) = ingestor.problems(NOW)
    assert "the store is unwritable" in problem and "No space left" in problem
    ingestor._recovered()
    ingestor.stats.last_crash_at, ingestor.stats.restarts = NOW - 10, 1
    assert ingestor.problems(NOW) == ["ingest: restarted after a crash 10 s ago (1 in all)"]
    assert ingestor.problems(NOW + 3600) == []
