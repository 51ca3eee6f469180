"""What ``/api/health`` and ``/metrics`` report about this replica's ingest (``IngestStats``),
kept by the ingest loop (``ingest.Ingestor``)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

LAG_DEGRADED_S = 120.0  # /api/health says "degraded" when ingest is this far behind


@dataclass
class IngestStats:
    """What ``/api/health`` and ``/metrics`` report about this replica's ingest."""

    status: str = "starting"  # starting | ok | degraded | disabled
    error: str | None = None
    events: int = 0  # decoded events committed (duplicates included)
    stored: int = 0  # events new to the store
    messages: int = 0
    batches: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    lag: int | None = None
    last_commit_at: float | None = None
    rate: float = 0.0  # events per second, smoothed
    quarantined: Counter[str] = field(default_factory=Counter)  # by reason, by this replica
    repaired: Counter[str] = field(default_factory=Counter)  # events stored after repair, by what
    restarts: int = 0  # times the supervisor restarted the loop after a crash
    last_crash_at: float | None = None
    caught_up_at: float | None = None  # server time ingest last had nothing more waiting
    started_at: float = field(default_factory=time.time)
    _window: list[tuple[float, int]] = field(default_factory=list)

    def lag_seconds(self, now: float) -> float | None:
        """How far behind ingest is: 0 with nothing waiting in the broker, else how long it has
        been since ingest last had everything committed (a poll that drained the broker, by the
        server's own clock: a sender's skewed clock cannot fake it). None when the broker cannot
        say what waits."""
        if self.lag is None:
            return None
        if self.lag == 0:
            return 0.0
        return max(0.0, now - (self.caught_up_at if self.caught_up_at is not None else self.started_at))

    def record(self, now: float, events: int) -> None:
        self._window.append((now, events))
        cutoff = now - 10.0
        while self._window and self._window[0][0] < cutoff:
            self._window.pop(0)
        span = max(now - self._window[0][0], 1.0) if self._window else 1.0
        self.rate = sum(n for _, n in self._window) / span
