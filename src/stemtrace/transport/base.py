"""The transport contract: one publishing half (library) and one consuming half (server).

Both halves of a scheme live in the same module so the wire format cannot drift.
A message on every transport is one encoded batch: ``core.wire.encode_batch``
(the compact form, one process's events).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Where events go/come from. Built from ``STEMTRACE_URL`` or the app's broker settings."""

    url: str
    transport_options: Mapping[str, Any] = field(default_factory=dict)
    ssl: Any = None
    name: str = "stemtrace.events"  # stream key (Redis, before the user's key prefix) or queue name
    retention_s: float = 7 * 24 * 3600.0  # how long undelivered events are kept by the broker
    max_length: int = 100_000  # cap on stored batches (approximate on Redis); same default as the library
    connect_timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One transport message as received: an encoded batch and what acknowledges it."""

    payload: bytes
    token: Any  # opaque: stream entry id, AMQP delivery tag, …


class Publisher(ABC):
    """Sends encoded batches. Owned by one background thread; never shared."""

    @abstractmethod
    def send(self, batches: Sequence[bytes]) -> None:
        """Send all batches or raise; the caller backs off and reconnects."""

    @abstractmethod
    def close(self) -> None: ...


class Consumer(ABC):
    """Receives batches for the server; acknowledge only after they are committed."""

    # Most messages one poll should ask for; None when only the caller's limit applies.
    max_poll: int | None = None

    @abstractmethod
    def poll(self, max_messages: int, timeout_s: float) -> list[Delivery]: ...

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    # The broker-side name of this consumer's subscription (Redis group, RabbitMQ queue).
    subscription: str = ""

    def lag(self) -> int | None:
        """Messages waiting (not yet delivered to any consumer), when the broker can tell."""
        return None

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription this consumer can see on the same broker, its own included:
        ``name`` plus what the broker tells (``consumers``, ``pending``, ``lag``, …).
        Empty when the transport cannot tell."""
        return []

    @abstractmethod
    def close(self) -> None: ...


class Transport(ABC):
    """A broker family, chosen by URL scheme (``stemtrace.transports`` entry points)."""

    schemes: tuple[str, ...] = ()

    def __init__(self, config: TransportConfig) -> None:
        self.config = config

    @abstractmethod
    def publisher(self) -> Publisher: ...

    @abstractmethod
    def consumer(self, group: str, consumer_name: str) -> Consumer:
        """``group`` names the subscription: every store has its own (each sees every event),
        the replicas of one store share one (they split the load)."""

    def subscription_name(self, group: str) -> str:
        """What ``group`` is called on the broker (a Redis group, a RabbitMQ queue)."""
        return group
