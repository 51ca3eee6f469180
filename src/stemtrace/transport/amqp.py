"""RabbitMQ transport (``amqp://``, ``amqps://``, ``pyamqp://``).

A durable queue bounded twice: ``x-max-length`` with ``x-overflow: drop-head``
(the oldest batches go first when the server is away too long) and
``x-message-ttl`` equal to the retention. Each message is one batch, persistent.

Delivery: at least once; the consumer acknowledges after the server commits, and
unacknowledged messages return to the queue when a replica dies. Retention:
``retention`` by age and ``max_length`` batches by count, enforced by RabbitMQ.

RabbitMQ refuses to redeclare a queue with different arguments
(``PRECONDITION_FAILED``): changing ``retention`` needs the queue deleted, or a
new ``name``.
"""

from __future__ import annotations

from typing import Any

from stemtrace.transport.kombu import KombuTransport


class AmqpTransport(KombuTransport):
    """A bounded durable queue on RabbitMQ."""

    schemes = ("amqp", "amqps", "pyamqp")

    def queue_arguments(self) -> dict[str, Any]:
        return {
            "x-max-length": int(self.config.max_length),
            "x-overflow": "drop-head",
            "x-message-ttl": max(1, int(self.config.retention_s * 1000)),
        }

    def transport_options(self) -> dict[str, Any]:
        # py-amqp takes these straight from the transport options: every read and
        # write on the socket is bounded, so a hung broker raises instead of blocking.
        timeout = max(self.config.connect_timeout_s, 1.0)
        return {"max_retries": 0, "read_timeout": timeout, "write_timeout": timeout}
