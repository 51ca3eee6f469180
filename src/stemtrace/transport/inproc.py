"""In-process transport (``inproc://NAME``): for tests and the one-process demo.

A process-global registry of bounded queues keyed by ``NAME``. Publishing appends
a batch (the oldest batch is dropped when ``max_length`` is reached, like
RabbitMQ's drop-head); consumers in the same process pop batches. Nothing crosses
a process boundary: a forked worker child publishes into its own copy, so use a
real broker for prefork workers.

Delivery: at most once (``ack`` is a no-op; a batch is gone once polled).
Retention: ``max_length`` batches, for the life of the process.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from stemtrace.transport.base import Consumer, Delivery, Publisher, Transport, TransportConfig


class InProcQueue:
    """A bounded FIFO of batches with a condition for blocking polls."""

    def __init__(self, max_length: int) -> None:
        self.items: deque[bytes] = deque(maxlen=max(1, max_length))
        self.cond = threading.Condition()
        self.dropped = 0

    def put(self, payloads: Sequence[bytes]) -> None:
        with self.cond:
            for payload in payloads:
                if len(self.items) == self.items.maxlen:
                    self.dropped += 1
                self.items.append(payload)
            self.cond.notify_all()

    def take(self, max_items: int, timeout_s: float) -> list[bytes]:
        with self.cond:
            if not self.items and timeout_s > 0:
                self.cond.wait(timeout_s)
            out: list[bytes] = []
            while self.items and len(out) < max_items:
                out.append(self.items.popleft())
            return out


_registry: dict[str, InProcQueue] = {}
_registry_lock = threading.Lock()


def queue_named(name: str, max_length: int = 1_000_000) -> InProcQueue:
    """The queue behind ``inproc://name`` (created on first use)."""
    with _registry_lock:
        found = _registry.get(name)
        if found is None:
            found = _registry[name] = InProcQueue(max_length)
        return found


def forget(name: str) -> None:
    """Drop a queue (tests call this to clean up)."""
    with _registry_lock:
        _registry.pop(name, None)


def _name(config: TransportConfig) -> str:
    rest = config.url.partition("://")[2].strip("/")
    return rest or config.name


class InProcPublisher(Publisher):
    def __init__(self, queue: InProcQueue) -> None:
        self._queue = queue

    def send(self, batches: Sequence[bytes]) -> None:
        self._queue.put(batches)

    def close(self) -> None:
        return None


class InProcConsumer(Consumer):
    def __init__(self, queue: InProcQueue) -> None:
        self._queue = queue

    def poll(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        return [Delivery(payload=p, token=None) for p in self._queue.take(max_messages, timeout_s)]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        return None

    def lag(self) -> int | None:
        return len(self._queue.items)

    def close(self) -> None:
        return None


class InProcTransport(Transport):
    """Batches in a process-global queue named by the URL's host part."""

    schemes = ("inproc",)

    def publisher(self) -> Publisher:
        return InProcPublisher(queue_named(_name(self.config), self.config.max_length))

    def consumer(self, group: str, consumer_name: str) -> Consumer:
        return InProcConsumer(queue_named(_name(self.config), self.config.max_length))
