"""The emitter's buffer policy while the broker is away: keep, cap (events and bytes), drop oldest.

The broker "away" is a real refused connection (a local port nobody listens on); "back" is the
in-process transport. The publisher thread is not started: each test runs its ticks
(``_drain``) itself, so what happens between them is exact.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.finish import Finisher
from stemtrace.capture.publisher import Emitter
from stemtrace.capture.redact import Redactor
from stemtrace.core import events as ev
from stemtrace.core.gaps import OVERFLOW
from stemtrace.core.wire import decode_batch
from stemtrace.transport import TransportConfig
from stemtrace.transport.inproc import forget, queue_named


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # closed again: connecting is refused at once


DOWN = _refused_url()


class Harness:
    """An emitter whose ticks the test runs, and a switch for its broker."""

    def __init__(self, **options: object) -> None:
        config = dataclasses.replace(CaptureConfig(), connect_timeout=0.5, **options)  # type: ignore[arg-type]
        self.name = f"buffer-{uuid.uuid4().hex[:8]}"
        self.up = TransportConfig(url=f"inproc://{self.name}")
        self.down = TransportConfig(url=DOWN, connect_timeout_s=0.5)
        self.emitter = Emitter(config, self.down, Finisher(config, Redactor([])))
        self.emitter._thread = object()  # type: ignore[assignment]  # ticks are run by the test
        self.emitted = 0

    def emit(self, n: int) -> None:
        for _ in range(n):
            self.emitted += 1
            self.emitter.emit_task(
                ev.TASK_STARTED, f"t{self.emitted}", "proj.add", (0, 1, None, None, None, None, None, None)
            )

    def tick(self, *, broker_up: bool) -> None:
        """One publisher tick; a broker that just came back is tried at once (no backoff left)."""
        em = self.emitter
        transport = self.up if broker_up else self.down
        if em.transport is not transport:
            em.transport = transport
            em._retry_at = 0.0
            if em._publisher is not None:
                em._publisher.close()
                em._publisher = None
        em._drain()

    def received(self) -> list[int]:
        """The seqs that reached the broker, in the order they arrived."""
        queue = queue_named(self.name)
        seqs: list[int] = []
        for payload in list(queue.items):
            events, errors = decode_batch(payload)
            assert errors == []
            seqs.extend(e.src.seq for e in events)
        return seqs

    def close(self) -> None:
        forget(self.name)


def test_a_failed_send_keeps_its_events_and_sends_them_when_the_broker_is_back() -> None:
    h = Harness(batch_size=100)
    try:
        h.emit(250)
        h.tick(broker_up=False)
        em = h.emitter
        assert em.held_events == 250 and len(em.buffer) == 0 and em.dropped == 0
        assert em.sent == 0 and em.errors >= 1
        h.emit(30)
        h.tick(broker_up=False)  # backing off: the new events are finished and held, nothing sent
        assert em.held_events == 280 and em.held_bytes > 0
        h.tick(broker_up=True)
        assert h.received() == list(range(1, 281))  # all of them, in order
        assert em.sent == 280 and em.held_events == 0 and em.held_bytes == 0 and em.dropped == 0
    finally:
        h.close()


def test_the_event_cap_drops_the_oldest_and_counts_them() -> None:
    h = Harness(batch_size=100, buffer_size=1000)
    try:
        for _ in range(30):
            h.emit(100)
            h.tick(broker_up=False)
        em = h.emitter
        assert em.held_events <= 1000
        assert em.overflow == 3000 - em.held_events and em.dropped == em.overflow
        health = em.health()["data"]
        assert health["drops"] == {OVERFLOW: em.overflow} and health["dropped"] == em.overflow
        assert health["buffer_depth"] == em.held_events
        h.tick(broker_up=True)
        got = h.received()
        # Oldest first: what survives is the newest events, every one of them, in order.
        assert got == list(range(3001 - len(got), 3001))
        assert len(got) == 3000 - em.overflow >= 900
    finally:
        h.close()


def test_the_byte_cap_drops_the_oldest_and_counts_them() -> None:
    h = Harness(batch_size=50, buffer_bytes=20_000)
    try:
        for _ in range(40):
            h.emit(50)
            h.tick(broker_up=False)
        em = h.emitter
        assert 0 < em.held_bytes <= 20_000
        assert em.overflow > 0 and em.overflow + em.held_events == 2000
        h.tick(broker_up=True)
        got = h.received()
        assert got == list(range(2001 - len(got), 2001))
        assert len(got) == 2000 - em.overflow
    finally:
        h.close()


def test_a_full_caller_buffer_makes_room_by_dropping_its_oldest_entry() -> None:
    """With the publisher thread stalled, ``put`` itself keeps the newest ``buffer_size``."""
    h = Harness(buffer_size=100)
    try:
        h.emit(250)
        em = h.emitter
        assert len(em.buffer) == 100 and em.overflow == 150
        assert [entry[2] for entry in em.buffer] == list(range(151, 251))
        h.tick(broker_up=True)
        assert h.received() == list(range(151, 251))
    finally:
        h.close()


def test_a_health_report_is_never_what_makes_room() -> None:
    h = Harness(buffer_size=10)
    try:
        h.emit(10)
        h.emitter.emit(h.emitter.health(), force=True)
        assert len(h.emitter.buffer) == 11 and h.emitter.overflow == 0
    finally:
        h.close()


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 400), st.booleans()), min_size=1, max_size=12),
    limit=st.integers(50, 2000),
    byte_limit=st.integers(4_000, 200_000),
    batch=st.integers(1, 150),
)
def test_nothing_is_lost_without_being_counted_and_order_is_kept(
    steps: list[tuple[int, bool]], limit: int, byte_limit: int, batch: int
) -> None:
    h = Harness(buffer_size=limit, buffer_bytes=byte_limit, batch_size=batch)
    try:
        em = h.emitter
        for n, up in steps:
            h.emit(n)
            h.tick(broker_up=up)
            # The caps hold after every tick (one message is always kept, whatever its size).
            assert em.held_events + len(em.buffer) <= limit or len(em.held) == 1
            assert em.held_bytes <= byte_limit or len(em.held) == 1
        h.tick(broker_up=True)
        got = h.received()
        assert got == sorted(set(got))  # no duplicate, never out of order
        assert em.held_events == 0 and not em.buffer
        # Every event was either sent or counted as dropped for overflow.
        assert len(got) == em.sent == h.emitted - em.overflow
        assert em.dropped == em.overflow
    finally:
        h.close()
