"""The ingest loop: poll the transport, decode, commit one transaction, then acknowledge.

The loop is pipelined one batch deep: while a batch's rows are inserted and committed
(the database holds no GIL then), the next one is polled, decoded and planned
(``Store.prepare``); it is applied only once that commit is done, and each batch is
acknowledged only after its own commit.

Acknowledging only after the commit gives at-least-once delivery; the store's
``(inst, seq)`` key turns that into an exactly-once effect. A broker or store that
goes away is retried with backoff in this thread while the API keeps serving and
``/api/health`` says ``degraded``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stemtrace.server.ingest_stats import LAG_DEGRADED_S, IngestStats
from stemtrace.server.jsonfast import decode_payload
from stemtrace.server.quarantine import Quarantined, is_data_error, salvage
from stemtrace.server.store import ApplyResult, Changes, PendingApply, Store
from stemtrace.server.validate import Rejected, check
from stemtrace.transport import Consumer, TransportConfig, mask_url, resolve

logger = logging.getLogger("stemtrace.server.ingest")

MAX_BACKOFF_S = 10.0
EVENTS_PER_MESSAGE_GUESS = 50  # until messages have been seen: how many events one holds
MAX_MESSAGES_PER_POLL = 1000
POLL_WHILE_COMMITTING_S = 0.05
MAX_RESTART_BACKOFF_S = 60.0
CRASH_RECENT_S = 300.0  # /api/health says "degraded" when ingest restarted after a crash this recently


class Ingestor:
    """One background thread that moves events from the transport into the store."""

    def __init__(
        self,
        store: Store,
        config: TransportConfig,
        *,
        group: str = "stemtrace-server",
        consumer_name: str | None = None,
        batch_size: int = 5000,
        on_commit: Callable[[Changes], None] | None = None,
        on_applied: Callable[[list[Any]], None] | None = None,  # loss detection: server/losses.py
        clock: Callable[[], float] = time.time,
        source: str = "",
    ) -> None:
        self.store = store
        self.source = source  # the label its tasks carry (``--source NAME=…``); empty: unlabelled
        self.on_applied = on_applied
        self.config = config
        self.group = group
        self.consumer_name = consumer_name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = max(1, batch_size)
        self.per_message = float(EVENTS_PER_MESSAGE_GUESS)  # smoothed events per message seen
        self.on_commit = on_commit
        self.clock = clock
        self.stats = IngestStats()
        self._logged_kinds: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._fault: str | None = None  # "broker" | "store" while degraded

    def start(self) -> None:
        self.stats.started_at = self.clock()
        name = f"stemtrace-ingest-{self.source}" if self.source else "stemtrace-ingest"
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._drop_consumer()

    @property
    def alive(self) -> bool:
        """False when the ingest thread ended although nobody stopped it (never expected)."""
        return self._thread is None or self._stop.is_set() or self._thread.is_alive()

    def problems(self, now: float) -> list[str]:
        """Why this replica's ingest makes ``/api/health`` say ``degraded`` (empty when it doesn't)."""
        s = self.stats
        out = []
        if not self.alive:
            out.append("ingest: the ingest thread is not running")
        if s.status == "degraded":
            what = {"store": "the store is unwritable", "broker": "the broker is unreachable"}.get(
                self._fault or "", "stalled"
            )
            out.append(f"ingest: {what}: {s.error}" if s.error else f"ingest: {what}")
        lag = s.lag_seconds(now)
        if lag is not None and lag > LAG_DEGRADED_S:
            out.append(f"ingest: {lag:.0f} s behind ({s.lag} messages waiting)")
        if s.last_crash_at is not None and now - s.last_crash_at < CRASH_RECENT_S and s.status != "degraded":
            ago = now - s.last_crash_at
            out.append(f"ingest: restarted after a crash {ago:.0f} s ago ({s.restarts} in all)")
        if self.source:  # which of several sources: "ingest (source prod): ..."
            out = [p.replace("ingest:", f"ingest (source {self.source}):", 1) for p in out]
        return out

    def _supervise(self) -> None:
        """Run the loop; a crash (a bug: every expected failure is handled inside) is logged,
        shown by ``/api/health``, and followed by a restart after a growing pause. What was
        polled and not acknowledged comes back to the new consumer."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._run()
                return
            except BaseException as exc:  # a daemon thread that dies says nothing
                s = self.stats
                s.restarts += 1
                s.last_crash_at = self.clock()
                s.status = "degraded"
                s.error = f"ingest crashed: {type(exc).__name__}: {mask_url(str(exc))[:200]}"
                self._fault = "crash"
                logger.error("ingest crashed; restarting it in %.0f s", backoff, exc_info=True)
                try:
                    self._drop_consumer()
                except Exception:
                    pass
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    def subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions on this broker as the consumer last saw them (see
        ``Consumer.subscriptions``); empty while no consumer is connected."""
        consumer = self._consumer
        return consumer.subscriptions() if consumer is not None else []

    def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()

    def _degraded(self, what: str, exc: BaseException) -> None:
        self._fault = what.split(" ", 1)[0]
        message = f"{what}: {type(exc).__name__}: {mask_url(str(exc))[:300]}"
        if self.stats.status != "degraded" or self.stats.error != message:
            # A store that cannot be written is an operator's problem (file removed, disk full):
            # say so at ERROR. A broker that went away usually comes back by itself.
            log = logger.error if self._fault == "store" else logger.warning
            log("ingest paused, acknowledging nothing and retrying in the background (%s)", message)
        self.stats.status = "degraded"
        self.stats.error = message

    def _run(self) -> None:
        backoff = 0.5
        last_lag = 0.0
        pending: _Batch | None = None  # applied, maybe still committing, not yet acknowledged
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._consumer = resolve(self.config).consumer(self.group, self.consumer_name)
                # With a commit in flight, wait briefly: long enough to fill the next batch from
                # a backlog (a RabbitMQ consumer receives message by message), short enough that
                # the commit's acknowledgement and changes do not wait for a quiet stream.
                wanted = min(self.max_messages, self._consumer.max_poll or MAX_MESSAGES_PER_POLL)
                deliveries = self._consumer.poll(wanted, POLL_WHILE_COMMITTING_S if pending else 0.2)
            except Exception as exc:
                if pending is not None:
                    self._finish(pending)  # its ack fails too, with the consumer gone: redelivered
                    pending = None
                self._degraded(f"broker {mask_url(self.config.url)}", exc)
                self._drop_consumer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if self.stats.status == "starting" or self._fault in ("broker", "crash"):
                self._recovered()
            now = self.clock()
            if now - last_lag > 2.0:
                last_lag = now
                self.stats.lag = self._consumer.lag()
            batch = self._decode(deliveries) if deliveries else None
            if batch is not None and len(deliveries) < wanted:
                batch.drained_at = now  # the broker had no more: caught up once this commits
            elif batch is None and pending is None and self._fault is None:
                self.stats.caught_up_at = now
            if pending is not None:  # decoding overlapped its commit; now wait for it
                ok = self._finish(pending)
                pending = None
                if not ok:
                    # Not acknowledged: redelivered later. Neither is what was just polled.
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                backoff = 0.5
            if batch is None:
                continue
            pending = self._begin(batch)
            if pending is None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        if pending is not None:
            self._finish(pending)

    @property
    def max_messages(self) -> int:
        """Messages per poll to fill a transaction: a library process sends one message per
        flush, holding anything from one event (a quiet client) to ``batch_size`` (a busy worker)."""
        wanted = round(self.batch_size / max(self.per_message, 1.0))
        return max(1, min(MAX_MESSAGES_PER_POLL, wanted))

    def _recovered(self) -> None:
        if self.stats.status == "degraded":
            logger.info("ingest recovered")
        self._fault = None
        self.stats.status = "ok"
        self.stats.error = None

    def _decode(self, deliveries: list[Any]) -> _Batch:
        batch = _Batch(deliveries)
        now = self.clock()
        for delivery in deliveries:
            try:
                good, bad = decode_payload(delivery.payload)
            except Exception as exc:  # e.g. RecursionError: JSON nested past the parser's limit
                self._quarantine(batch, Quarantined.of_payload("undecodable", delivery.payload, _why(exc)))
                continue
            for decoded in good:
                try:
                    event, repaired = check(decoded, now)
                except Rejected as exc:
                    self._quarantine(batch, Quarantined.of_event(exc.reason, decoded, exc.detail))
                    continue
                except Exception as exc:  # validation itself must never stall ingest
                    self._quarantine(batch, Quarantined.of_event("invalid", decoded, _why(exc)))
                    continue
                if repaired:
                    batch.repaired.update(repaired)
                batch.events.append(event)
            for err in bad:
                batch.malformed[err.kind] += 1
                if err.kind not in self._logged_kinds:
                    self._logged_kinds.add(err.kind)
                    logger.warning(
                        "skipping malformed event (%s); further ones of this kind are only counted", err
                    )
        seen = (len(batch.events) + sum(batch.malformed.values()) + len(batch.quarantined)) / len(deliveries)
        self.per_message += (seen - self.per_message) * 0.3
        try:
            batch.prepared = self.store.prepare(batch.events)
        except Exception:  # ``apply_begin`` prepares again, and reports what fails then
            logger.debug("preparing a batch failed; it is prepared again when applied", exc_info=True)
        return batch

    def _quarantine(self, batch: _Batch, entry: Quarantined) -> None:
        batch.quarantined.append(entry)
        key = f"quarantine:{entry.reason}:{entry.kind}"
        if key not in self._logged_kinds:
            self._logged_kinds.add(key)
            logger.warning(
                "quarantined a %s (%s: %s); further ones are only counted (GET /api/quarantine)",
                entry.kind,
                entry.reason,
                entry.detail[:200],
            )

    def _begin(self, batch: _Batch) -> _Batch | None:
        """Run the batch's statements; its commit goes on in the background."""
        try:
            batch.pending = self.store.apply_begin(
                batch.events, batch.malformed, self.clock(), prepared=batch.prepared, source=self.source
            )
        except Exception as exc:
            if not is_data_error(exc):
                self._store_failed(exc)
                return None
            batch.pending = _Failed(exc)  # ``_finish`` splits it
        return batch

    def _salvage(self, batch: _Batch, exc: BaseException) -> ApplyResult:
        """The batch failed for something in it: store all but what fails alone, quarantine that."""
        logger.info("a batch of %d events failed (%s); splitting it", len(batch.events), _why(exc))
        found = salvage(self.store, batch.events, batch.malformed, self.clock(), self.source)
        for entry in found.quarantined:
            self._quarantine(batch, entry)
        return ApplyResult(stored=found.stored, changes=found.merged_changes())

    def _store_failed(self, exc: Exception) -> None:
        """Nothing of the batch is acknowledged. A new consumer gets it back at once: RabbitMQ
        requeues a closed channel's unacknowledged messages, and a Redis consumer re-reads its
        own pending entries first, instead of waiting for another replica to claim them."""
        self._degraded("store", exc)
        self._drop_consumer()

    def _finish(self, batch: _Batch) -> bool:
        """Wait for the commit, then acknowledge; on a store error nothing is acknowledged."""
        assert batch.pending is not None
        try:
            try:
                result = batch.pending.result()
            except Exception as exc:
                if not is_data_error(exc) or self._stop.is_set():  # stopping: leave it to redelivery
                    raise
                result = self._salvage(batch, exc)
            if batch.quarantined:
                self.store.record_quarantine(batch.quarantined, self.clock())
            if self.on_applied is not None:  # the seqs seen, recorded before the acknowledgement
                self.on_applied(batch.events)
        except Exception as exc:
            self._store_failed(exc)
            return False
        try:
            if self._consumer is None:
                raise ConnectionError("the consumer was dropped before the acknowledgement")
            self._consumer.ack(batch.deliveries)
        except Exception as exc:
            # Committed but not acknowledged: redelivery is harmless (the store de-duplicates).
            self._degraded(f"broker {mask_url(self.config.url)}", exc)
            self._drop_consumer()
            return False
        now = self.clock()
        s = self.stats
        s.events += len(batch.events)
        s.stored += result.stored
        s.messages += len(batch.deliveries)
        s.batches += 1
        s.malformed.update(batch.malformed)
        s.quarantined.update(q.reason for q in batch.quarantined)
        s.repaired.update(batch.repaired)
        if batch.drained_at is not None:
            s.caught_up_at = batch.drained_at
        s.last_commit_at = now
        s.record(now, len(batch.events))
        if s.status != "ok":
            self._recovered()
        if self.on_commit is not None and result.changes:
            self.on_commit(result.changes)
        return True


@dataclass
class _Batch:
    """Polled messages on their way into the store."""

    deliveries: list[Any]
    events: list[Any] = field(default_factory=list)
    malformed: Counter[str] = field(default_factory=Counter)
    prepared: object = None  # Store.prepare(events), worked out while the previous batch commits
    pending: PendingApply | None = None
    quarantined: list[Quarantined] = field(default_factory=list)
    repaired: Counter[str] = field(default_factory=Counter)
    drained_at: float | None = None  # polled with nothing more waiting (see IngestStats.lag_seconds)


class _Failed(PendingApply):
    """A batch whose statements failed for something in it: ``result()`` raises that."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(ApplyResult())
        self._exc = exc

    def result(self) -> ApplyResult:
        raise self._exc


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__
