"""Generic kombu transport: any broker kombu speaks (SQS, filesystem, …).

One message per batch, sent to a queue named ``config.name`` through the default
exchange, with ``retry=False`` so kombu never blocks the publisher thread in its
own retry loop. The consumer acknowledges manually, after the server commits.

Delivery: at least once. Retention: whatever the broker does with a plain queue
(unbounded on most kombu transports; set it on the broker, e.g. SQS
``MessageRetentionPeriod``). :mod:`stemtrace.transport.amqp` builds on this class
and adds RabbitMQ's length and age bounds.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from stemtrace.transport.base import Consumer, Delivery, Publisher, Transport

logger = logging.getLogger("stemtrace.transport")


def kombu_module() -> Any:
    """kombu, loaded when first needed and typed loosely (its annotations are partial)."""
    return importlib.import_module("kombu")


class KombuTransport(Transport):
    """Batches as messages on one kombu queue."""

    schemes: tuple[str, ...] = ()

    def queue_arguments(self) -> dict[str, Any]:
        """Broker-specific queue arguments (none for a generic broker)."""
        return {}

    def transport_options(self) -> dict[str, Any]:
        """Options that bound every socket operation, merged over the user's."""
        return {"max_retries": 0}

    def connection(self) -> Any:
        options = dict(self.config.transport_options)
        options.update(self.transport_options())
        return kombu_module().Connection(
            self.config.url,
            transport_options=options,
            ssl=self.config.ssl,
            connect_timeout=self.config.connect_timeout_s,
        )

    def queue(self) -> Any:
        kombu = kombu_module()
        return kombu.Queue(
            self.config.name,
            exchange=kombu.Exchange(""),
            routing_key=self.config.name,
            durable=True,
            queue_arguments=self.queue_arguments() or None,
        )

    def declare(self, conn: Any) -> tuple[Any, Any]:
        """A channel and the bound queue, declared; an existing queue with other bounds is used as is.

        RabbitMQ refuses to redeclare a queue with different arguments; events must
        keep flowing, so we fall back to a passive declare and log it.
        """
        channel = conn.channel()
        queue = self.queue()(channel)
        try:
            queue.declare()
        except Exception as exc:
            if "PRECONDITION_FAILED" not in str(exc):
                raise
            logger.warning(
                "stemtrace: queue %r exists with other arguments; using it as is", self.config.name
            )
            channel = conn.channel()
            queue = self.queue()(channel)
            queue.queue_declare(passive=True)
        return channel, queue

    def publisher(self) -> Publisher:
        return KombuPublisher(self)

    def consumer(self, group: str, consumer_name: str) -> Consumer:
        return KombuConsumer(self, prefetch=400)


class KombuPublisher(Publisher):
    """Owns one connection; the queue is declared once per connection."""

    def __init__(self, transport: KombuTransport) -> None:
        self._conn = transport.connection()
        self._conn.ensure_connection(max_retries=1)
        channel, self._queue = transport.declare(self._conn)
        kombu = kombu_module()
        self._producer = kombu.Producer(
            channel, exchange=kombu.Exchange(""), routing_key=transport.config.name
        )

    def send(self, batches: Sequence[bytes]) -> None:
        for payload in batches:
            self._producer.publish(
                payload,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                retry=False,
            )

    def close(self) -> None:
        try:
            self._conn.release()
        except Exception:
            pass


class KombuConsumer(Consumer):
    """Pulls batches with manual acks; ``prefetch`` bounds unacknowledged messages."""

    def __init__(self, transport: KombuTransport, prefetch: int) -> None:
        self._conn = transport.connection()
        self._conn.ensure_connection(max_retries=1)
        self._channel, self._queue = transport.declare(self._conn)
        self._pending: list[Delivery] = []
        self._consumer = kombu_module().Consumer(
            # on_message hands over the raw body: decoding is core.events.decode_batch's job,
            # so one invalid-JSON message is counted as malformed instead of wedging the consumer.
            self._channel,
            queues=[self._queue],
            on_message=self._on_message,
        )
        self._consumer.qos(prefetch_count=prefetch)
        # Unacknowledged messages count against the prefetch: half of it for the batch being
        # committed, half for the poll that overlaps it (asking for more would only wait).
        self.max_poll = max(1, prefetch // 2)
        self._consumer.consume()

    def _on_message(self, message: Any) -> None:
        raw = message.body
        payload = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        self._pending.append(Delivery(payload=payload, token=message))

    def poll(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while len(self._pending) < max_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self._conn.drain_events(timeout=remaining if not self._pending else min(remaining, 0.05))
            except TimeoutError:
                if self._pending:
                    break
            except OSError as exc:
                if "timed out" not in str(exc):
                    raise
                if self._pending:
                    break
        out, self._pending = self._pending[:max_messages], self._pending[max_messages:]
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            delivery.token.ack()

    def lag(self) -> int | None:
        try:
            _, count, _ = self._queue.queue_declare(passive=True)
        except Exception:
            return None
        return int(count)

    def close(self) -> None:
        try:
            self._consumer.cancel()
        except Exception:
            pass
        try:
            self._conn.release()
        except Exception:
            pass
