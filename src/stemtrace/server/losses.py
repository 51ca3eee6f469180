"""Loss detection: the seqs each library process sent, their gaps, and the gaps that are losses.

Every event names its process (``inst``) and its place in that process's sequence (``seq``,
from 1, no hole). Ingest calls :meth:`LossTracker.observe` once per applied batch, before the
batch is acknowledged, so the store's record of seen seqs is exactly as durable as the events
(a batch re-delivered after a crash is observed again: recording is idempotent). A thread
settles the records every few seconds: a gap still open after the grace period (events
arrive out of order across batches and replicas; a dead replica's batches are claimed by
another after a minute) becomes a loss record with its cause: ``buffer overflow`` when the
process's ``library.health`` reported dropping that many, ``missing after broker trimming``
when it reported its health without such drops (so it handed them to the broker), else
``unknown``. ``/api/health``, ``/metrics`` and the workflow graph read the records.

The logic is ``core.gaps``'; the rows are ``store/seen.py``'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from stemtrace.core.events import Event
from stemtrace.core.gaps import ranges_of
from stemtrace.server.store import Store, WorkflowRow

logger = logging.getLogger("stemtrace.server.losses")

GRACE_S = 300.0  # a gap open this long is a loss: well past a dead replica's batches being claimed (≤ 90 s)
RECENT_S = 3600.0  # losses detected this recently make ``/api/health`` say ``degraded``
SETTLE_EVERY_S = 10.0
KEEP_S = 30 * 86400.0  # seen ranges of processes silent this long, and loss records, are forgotten


class LossTracker:
    """Records the seqs ingest applies and settles their gaps into loss records."""

    def __init__(
        self,
        store: Store,
        *,
        grace: float = GRACE_S,
        every_s: float = SETTLE_EVERY_S,
        keep_s: float = KEEP_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.grace = grace
        self.every_s = every_s
        self.keep_s = keep_s
        self.clock = clock
        self.lost = 0  # events this replica recorded lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, events: Sequence[Event]) -> None:
        """The ingest hook: record the runs of seqs of an applied batch (raises on a store error,
        so the batch is not acknowledged and comes back)."""
        seqs: dict[str, tuple[list[int], list[float], tuple[str, int]]] = {}
        inst = None
        cur_seqs: list[int] = []
        cur_ts: list[float] = []
        for e in events:  # a batch holds runs of one process's events: look up on a change only
            src = e.src
            if src.inst != inst:
                inst = src.inst
                found = seqs.get(inst)
                if found is None:
                    found = seqs[inst] = ([], [], (src.host, src.pid))
                cur_seqs, cur_ts = found[0], found[1]
            cur_seqs.append(src.seq)
            cur_ts.append(e.ts)
        now = self.clock()
        rows = [
            (key, r.lo, r.hi, r.lo_at, r.hi_at, r.lo_ts, r.hi_ts, *whose)
            for key, (found_seqs, stamps, whose) in seqs.items()
            for r in ranges_of(zip(found_seqs, stamps, strict=True), now)
        ]
        self.store.record_seen(rows)

    def settle(self) -> int:
        """One pass: gaps past the grace period become loss records. Returns events newly lost."""
        now = self.clock()
        lost = self.store.settle_losses(now, self.grace, now - self.keep_s)
        if lost:
            self.lost += lost
            logger.warning(
                "%d event(s) recorded lost (sequence gaps open for %.0fs); see /api/health", lost, self.grace
            )
        return lost

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stemtrace-losses", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.settle()
            except Exception as exc:
                logger.warning(
                    "loss detection failed, will retry: %s: %s", type(exc).__name__, str(exc)[:200]
                )


def loss_summary(store: Store, now: float) -> dict[str, Any]:
    """What ``/api/health`` shows: totals by cause, the recent count, the latest records."""
    return store.loss_report(now - RECENT_S)


def workflow_flag(store: Store, row: WorkflowRow) -> bool:
    """Whether events of the workflow may be missing: a recorded loss overlaps its time.

    A finished workflow spans its first event to its end, and only losses of processes that
    sent some of its events count (what it could miss are intermediate events: retries,
    states between). An unfinished one spans its first event onwards, and a loss of any
    process counts: the event that would have moved it on (a worker's receipt, start or
    outcome) may be the one lost, from a process that never sent it anything else.
    """
    start = min(row.started_at if row.started_at is not None else row.sort_ts, row.sort_ts)
    try:
        if row.finished_at is None:
            return store.losses_overlapping(start, 1e15) > 0
        return store.losses_overlapping(start, row.finished_at, row.id) > 0
    except Exception:  # never fail a graph for this: the flag is a hint
        logger.debug("could not check losses for workflow %s", row.id[:80], exc_info=True)
        return False


def with_missing_flag(encoded: bytes, missing: bool) -> bytes:
    """A workflow graph's JSON (cached bytes, see ``graph_json``) with ``events_may_be_missing``
    set: losses are found after the graph was built, so the flag cannot live in the cache.

    The field's first occurrence is the graph's own, ahead of the nodes: inside a JSON string
    its quotes would be escaped, so no name or id can hold these bytes."""
    if not missing:
        return encoded
    return encoded.replace(b'"events_may_be_missing":false', b'"events_may_be_missing":true', 1)
