"""RabbitMQ transport (``amqp://``, ``amqps://``, ``pyamqp://``).

Topology (all durable, declared by both halves, so either may start first)::

    library ──▶ exchange <name> (fanout) ──▶ queue <name>.<subscription>   one per store
                   │ alternate-exchange       queue <name>.<subscription>   …
                   ▼
                exchange <name>.unrouted (fanout) ──▶ queue <name>        the backlog

Every store's server declares its own queue, ``<name>.stemtrace:<store id>``, bound
to the fanout exchange: every store receives every batch, and the replicas of one
store consume the same queue and share the load. Until some store's queue exists,
the exchange routes nothing and RabbitMQ hands each batch to the alternate exchange,
whose queue ``<name>`` keeps it: the events sent before any server ever started.
Every server also consumes that queue, so the first store to start takes that
backlog (two stores starting at the same moment would split it). A later store
starts with the events sent after its queue was declared: RabbitMQ cannot replay a
queue another store already consumed (a documented limitation, ``docs/transports.md``).

Each queue is bounded twice: ``x-max-length`` with ``x-overflow: drop-head`` (the
oldest batches go first when a store's server is away too long) and
``x-message-ttl`` equal to the retention. Each message is one batch, persistent.

Delivery: at least once; the consumer acknowledges after the server commits, and
unacknowledged messages return to the queue when a replica dies.

Seeing the others: AMQP cannot list queues, so servers keep a small registry
themselves. Each server binds an exclusive, auto-deleted queue of its own to the
fanout exchange ``<name>.subscriptions`` and sends there, every 30 s, a message
naming its subscription (header ``stemtrace-subscription``, a 5-minute TTL); a
server that starts says hello, and the others answer at once. ``/api/health``
lists every subscription heard from in the last 90 s, with its queue's depth and
consumers (a passive declare). No batch ever goes through the registry.

RabbitMQ refuses to redeclare a queue with different arguments
(``PRECONDITION_FAILED``): changing ``retention`` needs the queue deleted, or a
new ``name``; until then the existing queue is used as it is.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from stemtrace.transport.base import Consumer
from stemtrace.transport.kombu import (
    ANNOUNCE_HEADER,
    HELLO_HEADER,
    KombuConsumer,
    KombuTransport,
    kombu_module,
    logger,
)

ANNOUNCE_EVERY_S = 30.0
_REFRESH_EVERY_S = 5.0
_ANNOUNCE_TTL_S = 300


class AmqpTransport(KombuTransport):
    """A fanout exchange and a bounded durable queue per store on RabbitMQ."""

    schemes = ("amqp", "amqps", "pyamqp")

    def exchange(self) -> Any:
        kombu = kombu_module()
        return kombu.Exchange(
            self.config.name,
            type="fanout",
            durable=True,
            arguments={"alternate-exchange": self.config.name + ".unrouted"},
        )

    def backlog_queue(self) -> Any:
        """``<name>``: what was published while no store's queue existed."""
        kombu = kombu_module()
        return kombu.Queue(
            self.config.name,
            exchange=kombu.Exchange(self.config.name + ".unrouted", type="fanout", durable=True),
            routing_key="",
            durable=True,
            queue_arguments=self.queue_arguments(),
        )

    def store_queue(self, group: str) -> Any:
        """``<name>.<group>``: one store's copy of every batch. ``x-expires``: RabbitMQ deletes it
        once no server has consumed from it for the retention (a store retired, a laptop that
        once pointed here), when every batch it held would have expired anyway."""
        kombu = kombu_module()
        unused_for = max(1, int(self.config.retention_s * 1000))
        return kombu.Queue(
            self.subscription_name(group),
            exchange=self.exchange(),
            routing_key="",
            durable=True,
            queue_arguments={**self.queue_arguments(), "x-expires": unused_for},
        )

    def subscription_name(self, group: str) -> str:
        return f"{self.config.name}.{group}"

    def _declare_topology(self, conn: Any) -> Any:
        """The backlog queue behind the alternate exchange, then the fanout exchange; a channel."""
        channel, _ = self.declare(conn, self.backlog_queue())
        self.exchange()(channel).declare()
        return channel

    def producer(self, conn: Any) -> Any:
        channel = self._declare_topology(conn)
        return kombu_module().Producer(channel, exchange=self.exchange(), routing_key="")

    def registry_exchange(self) -> Any:
        return kombu_module().Exchange(self.config.name + ".subscriptions", type="fanout", durable=True)

    def consumer_queues(self, conn: Any, group: str) -> tuple[Any, list[Any]]:
        channel = self._declare_topology(conn)
        channel, own = self.declare(conn, self.store_queue(group), channel)
        channel, backlog = self.declare(conn, self.backlog_queue(), channel)
        # This server's ear on the registry, dropped with its connection.
        registry = kombu_module().Queue(
            f"{self.config.name}.subscriptions.{uuid.uuid4().hex[:12]}",
            exchange=self.registry_exchange(),
            routing_key="",
            exclusive=True,
            auto_delete=True,
        )(channel)
        registry.declare()
        return channel, [own, backlog, registry]

    def consumer(self, group: str, consumer_name: str) -> Consumer:
        return AmqpConsumer(self, group, prefetch=400)

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
        # Publisher confirms: a send returns once RabbitMQ has taken each batch, and raises
        # otherwise, so the library keeps (and re-sends) what a restarting broker never stored
        # instead of counting bytes written to a dying socket as sent. Consumers are unaffected.
        return {"max_retries": 0, "read_timeout": timeout, "write_timeout": timeout, "confirm_publish": True}


class AmqpConsumer(KombuConsumer):
    """A store's consumer that also announces its subscription and hears the others'."""

    def __init__(self, transport: AmqpTransport, group: str, prefetch: int) -> None:
        self._heard: dict[str, float] = {}
        self._snapshot: list[dict[str, Any]] = []
        self._last_announce = float("-inf")
        self._last_refresh = float("-inf")
        super().__init__(transport, group, prefetch)
        self._heard[self.subscription] = time.time()
        self._announcer = kombu_module().Producer(
            self._conn.channel(), exchange=transport.registry_exchange(), routing_key=""
        )
        self._probe: Any = None
        self._hello = True  # the first announcement asks the others to answer

    def announced(self, name: str, hello: bool = False) -> None:
        self._heard[name] = time.time()
        if hello and name != self.subscription:
            self._last_announce = float("-inf")  # answer on the next poll

    def poll(self, max_messages: int, timeout_s: float) -> list[Any]:
        # Both run on the consumer's own thread: a kombu connection is not shared across threads.
        now = time.monotonic()
        if now - self._last_announce >= ANNOUNCE_EVERY_S:
            self._last_announce = now
            headers = {ANNOUNCE_HEADER: self.subscription}
            if self._hello:
                headers[HELLO_HEADER] = "1"
                self._hello = False
            self._announcer.publish(
                b"",
                headers=headers,
                expiration=_ANNOUNCE_TTL_S,
                delivery_mode=1,
                retry=False,
            )
        if now - self._last_refresh >= _REFRESH_EVERY_S:
            self._last_refresh = now
            self._refresh()
        return super().poll(max_messages, timeout_s)

    def _refresh(self) -> None:
        now = time.time()
        snapshot = []
        for name, at in sorted(self._heard.items()):
            if now - at > 3 * ANNOUNCE_EVERY_S and name != self.subscription:
                continue
            entry: dict[str, Any] = {"name": name, "own": name == self.subscription}
            entry.update(self._queue_counts(name))
            entry["last_heard_s"] = round(now - at, 1)
            snapshot.append(entry)
        self._snapshot = snapshot

    def _queue_counts(self, name: str) -> dict[str, Any]:
        """Messages and consumers of a queue, by a passive declare on a channel of its own
        (a failed passive declare closes its channel)."""
        try:
            if self._probe is None:
                self._probe = self._conn.channel()
            _, messages, consumers = self._probe.queue_declare(queue=name, passive=True)
        except Exception as exc:
            logger.debug("stemtrace: cannot inspect queue %r: %s", name, exc)
            self._probe = None
            return {}
        return {"lag": int(messages), "consumers": int(consumers)}

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self._snapshot)
