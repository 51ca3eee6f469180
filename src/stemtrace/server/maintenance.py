"""Retention, eviction, LOST detection, never-sent steps and space reclaiming: the store's
housekeeping thread.

Runs beside ingest in small transactions (a few hundred workflows each), so ingest takes its turn
between them and neither holds the writer long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stemtrace.server.store import Store
from stemtrace.server.store.never_sent import START

logger = logging.getLogger("stemtrace.server.maintenance")

RECLAIM_EVERY_S = 60.0


class Maintenance:
    """Retention and LOST detection, in small transactions that never hold up ingest for long."""

    def __init__(
        self,
        store: Store,
        *,
        retention: float,
        failure_retention: float,
        heartbeat_interval: float,
        max_tasks: int | None = None,
        never_sent_after: float = 300.0,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention = retention
        self.failure_retention = failure_retention
        self.max_tasks = max_tasks or None
        self.offline_after = 3 * heartbeat_interval
        self.never_sent_after = never_sent_after
        self.every_s = every_s
        self.clock = clock
        self.expired = 0
        self.evicted = 0
        self.lost = 0
        self.never_sent = 0  # workflows whose planned steps were found never sent
        self._settle_cursor = START
        self.reclaimed_pages = 0
        self.behind = False  # the last round ran out of time with expired work left
        self.last_run_at: float | None = None
        self.last_run_s = 0.0
        self._unreclaimed = 0
        self._last_reclaim = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stemtrace-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self, budget_s: float = 60.0) -> None:
        """Retention until caught up, in transactions of a few hundred workflows each (ingest
        takes its turn between them), then ``--max-tasks``, then space back to the disk."""
        started = time.monotonic()
        deadline = started + budget_s
        self.lost += self.store.mark_lost(self.clock(), self.offline_after)
        # After LOST detection: a task it ends may be what makes a workflow over.
        more = True
        while more and time.monotonic() < deadline:
            n, self._settle_cursor, more = self.store.settle_never_sent(
                self.clock(), self.never_sent_after, self._settle_cursor
            )
            self.never_sent += n
        deleted = self.store.expire_side_tables(self.clock(), self.retention)
        self.behind = True
        while time.monotonic() < deadline:
            n = self.store.expire(self.clock(), self.retention, self.failure_retention)
            self.expired += n
            deleted += n
            if n == 0:
                self.behind = False
                break
        while self.max_tasks and time.monotonic() < deadline:
            n = self.store.evict(self.max_tasks)
            self.evicted += n
            deleted += n
            if n == 0:
                break
        # Space back at most once a minute: the WAL truncation waits for a pause in writes.
        self._unreclaimed += deleted
        if self._unreclaimed and time.monotonic() - self._last_reclaim >= RECLAIM_EVERY_S:
            self._last_reclaim = time.monotonic()
            self._unreclaimed = 0
        else:
            deadline = 0.0
        while time.monotonic() < deadline:
            released = self.store.reclaim()
            self.reclaimed_pages += released
            if released == 0:
                break
        self.last_run_at = self.clock()
        self.last_run_s = time.monotonic() - started

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except Exception as exc:
                logger.warning("maintenance failed, will retry: %s: %s", type(exc).__name__, str(exc)[:200])
