"""Generic kombu transport: any broker kombu speaks (SQS, filesystem, …).

One message per batch, sent to a queue named ``config.name`` through the default
exchange, with ``retry=False`` so kombu never blocks the publisher thread in its
own retry loop. The consumer acknowledges manually, after the server commits.

Delivery: at least once. Retention: whatever the broker does with a plain queue
(unbounded on most kombu transports; set it on the broker, e.g. SQS
``MessageRetentionPeriod``). :mod:`stemtrace.transport.amqp` builds on this class
and adds RabbitMQ's length and age bounds, and a queue per store.

Several stores: a generic kombu broker has one queue, so two stores (two servers
with different databases) on it split the events between them. Durable fanout
exchanges are not something kombu's virtual transports offer alike (SQS needs SNS,
the Redis one's fanout is fire-and-forget pub/sub), so this is a documented
limitation: give each store its own ``STEMTRACE_EVENTS_NAME`` and library
``STEMTRACE_NAME``, or use RabbitMQ or Redis. Replicas of one store share the queue.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from stemtrace.transport.base import Consumer, Delivery, Publisher, Transport

logger = logging.getLogger("stemtrace.transport")

# Header of the small message a server sends through the registry exchange now and then to say which
# subscription it consumes (RabbitMQ, see ``stemtrace.transport.amqp``): never a batch.
ANNOUNCE_HEADER = "stemtrace-subscription"
HELLO_HEADER = "stemtrace-hello"  # on a server's first announcement: the others answer at once


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

    def declare(self, conn: Any, queue: Any = None, channel: Any = None) -> tuple[Any, Any]:
        """A channel and the bound queue (``self.queue()`` unless given), declared on ``channel``
        (a new one unless given); an existing queue with other bounds is used as is.

        RabbitMQ refuses to redeclare a queue with different arguments, and closes the
        channel; events must keep flowing, so we fall back to a passive declare on a new
        channel, returned in place of the given one, and log it.
        """
        unbound = self.queue() if queue is None else queue
        channel = conn.channel() if channel is None else channel
        bound = unbound(channel)
        try:
            bound.declare()
        except Exception as exc:
            if "PRECONDITION_FAILED" not in str(exc):
                raise
            logger.warning("stemtrace: queue %r exists with other arguments; using it as is", unbound.name)
            channel = conn.channel()
            bound = unbound(channel)
            bound.queue_declare(passive=True)
            if unbound.exchange is not None and unbound.exchange.name:
                bound.bind_to(unbound.exchange, routing_key=unbound.routing_key)
        return channel, bound

    def producer(self, conn: Any) -> Any:
        """Declare what publishing needs and return the kombu ``Producer`` batches go through:
        here the one queue, through the default exchange (RabbitMQ: ``AmqpTransport.producer``)."""
        channel, _ = self.declare(conn)
        kombu = kombu_module()
        return kombu.Producer(channel, exchange=kombu.Exchange(""), routing_key=self.config.name)

    def consumer_queues(self, conn: Any, group: str) -> tuple[Any, list[Any]]:
        """A channel and the declared queues a store's consumer reads (here the one queue)."""
        channel, queue = self.declare(conn)
        return channel, [queue]

    def subscription_name(self, group: str) -> str:
        return self.config.name

    def publisher(self) -> Publisher:
        return KombuPublisher(self)

    def consumer(self, group: str, consumer_name: str) -> Consumer:
        return KombuConsumer(self, group, prefetch=400)


class KombuPublisher(Publisher):
    """Owns one connection; the queue is declared once per connection."""

    def __init__(self, transport: KombuTransport) -> None:
        self._conn = transport.connection()
        self._conn.ensure_connection(max_retries=1)
        # Where batches go (exchange, routing key) and what is declared first is the
        # transport's choice: ``KombuTransport.producer`` (one queue by the default exchange)
        # and ``AmqpTransport.producer`` (RabbitMQ: a fanout exchange, a queue per store).
        self._producer = transport.producer(self._conn)

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

    def __init__(self, transport: KombuTransport, group: str, prefetch: int) -> None:
        self.subscription = transport.subscription_name(group)
        self._conn = transport.connection()
        self._conn.ensure_connection(max_retries=1)
        self._channel, queues = transport.consumer_queues(self._conn, group)
        self._queue = queues[0]
        self._pending: list[Delivery] = []
        self._consumer = kombu_module().Consumer(
            # on_message hands over the raw body: decoding is core.wire.decode_batch's job,
            # so one invalid-JSON message is counted as malformed instead of wedging the consumer.
            self._channel,
            queues=queues,
            on_message=self._on_message,
        )
        self._consumer.qos(prefetch_count=prefetch)
        # Unacknowledged messages count against the prefetch: half of it for the batch being
        # committed, half for the poll that overlaps it (asking for more would only wait).
        self.max_poll = max(1, prefetch // 2)
        self._consumer.consume()

    def _on_message(self, message: Any) -> None:
        headers = message.headers or {}
        if ANNOUNCE_HEADER in headers:  # a server saying which subscription it consumes
            self.announced(str(headers[ANNOUNCE_HEADER]), HELLO_HEADER in headers)
            message.ack()
            return
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

    def announced(self, name: str, hello: bool = False) -> None:
        """A subscription's announcement arrived (the generic transport sends none)."""

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
