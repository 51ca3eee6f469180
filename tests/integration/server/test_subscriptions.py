"""Subscriptions per store, on the real Redis and RabbitMQ, through the transports alone.

Two stores' consumers (``stemtrace:a`` and ``stemtrace:b``) each receive every batch, two
consumers of one store share its batches, what was published before any server existed
reaches the first store, and the broker keeps nothing that every store has acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stemtrace.transport import Consumer, TransportConfig, resolve

pytestmark = pytest.mark.integration


def batch(n: int) -> bytes:
    """A transport moves bytes; it never looks inside a batch."""
    return f"batch-{n}".encode()


def numbers(deliveries: list[Any]) -> list[int]:
    return [int(bytes(d.payload).split(b"-")[1]) for d in deliveries]


def drain(consumer: Consumer, want: int, rounds: int = 20) -> list[Any]:
    got: list[Any] = []
    for _ in range(rounds):
        got += consumer.poll(max(1, want - len(got)), 0.3)
        if len(got) >= want:
            break
    return got


@pytest.fixture
def config(broker: str, unique_name: str) -> Iterator[TransportConfig]:
    config = TransportConfig(url=broker, name=unique_name)
    yield config
    if broker.startswith("redis"):
        import redis

        redis.Redis.from_url(broker).delete(unique_name)
        return
    from kombu.connection import Connection

    with Connection(broker) as conn:
        for queue in (unique_name, f"{unique_name}.stemtrace:a", f"{unique_name}.stemtrace:b"):
            conn.channel().queue_delete(queue)
        for exchange in (unique_name, unique_name + ".unrouted", unique_name + ".subscriptions"):
            conn.channel().exchange_delete(exchange)


def test_each_store_gets_every_batch_and_replicas_share_them(config: TransportConfig) -> None:
    transport = resolve(config)
    publisher = transport.publisher()
    consumers: list[Consumer] = []
    try:
        publisher.send([batch(i) for i in range(3)])  # before any server: the backlog
        a1 = transport.consumer("stemtrace:a", "a-1")
        consumers.append(a1)
        backlog = drain(a1, 3)
        assert sorted(numbers(backlog)) == [0, 1, 2]  # the first store takes the backlog
        a1.ack(backlog)

        a2 = transport.consumer("stemtrace:a", "a-2")  # a replica of store a
        b = transport.consumer("stemtrace:b", "b-1")  # another store
        consumers += [a2, b]
        publisher.send([batch(i) for i in range(10, 30)])
        got_b = drain(b, 20)
        assert sorted(numbers(got_b)) == list(range(10, 30))
        got_a1: list[Any] = []
        got_a2: list[Any] = []
        for _ in range(20):
            got_a1 += a1.poll(5, 0.2)
            got_a2 += a2.poll(5, 0.2)
            if len(got_a1) + len(got_a2) >= 20:
                break
        # Store a's replicas between them had each batch exactly once.
        assert sorted(numbers(got_a1 + got_a2)) == list(range(10, 30))
        a1.ack(got_a1)
        a2.ack(got_a2)
        b.ack(got_b)
        names = {s["name"] for c in consumers for s in c.subscriptions()}
        if config.url.startswith("redis"):
            assert names == {"stemtrace:a", "stemtrace:b"}
            assert {s["name"]: s["own"] for s in b.subscriptions()} == {
                "stemtrace:a": False,
                "stemtrace:b": True,
            }
        else:
            assert {a1.subscription, b.subscription} == {
                f"{config.name}.stemtrace:a",
                f"{config.name}.stemtrace:b",
            }
    finally:
        publisher.close()
        for consumer in consumers:
            consumer.close()


def test_redis_keeps_what_some_store_has_not_acknowledged(redis_url: str, unique_name: str) -> None:
    import redis

    config = TransportConfig(url=redis_url, name=unique_name)
    transport = resolve(config)
    raw = redis.Redis.from_url(redis_url)
    publisher = transport.publisher()
    a = transport.consumer("stemtrace:a", "a-1")
    b = transport.consumer("stemtrace:b", "b-1")
    try:
        publisher.send([batch(i) for i in range(6)])
        got_a = drain(a, 6)
        a.ack(got_a)
        # Store b has read nothing yet: nothing may go.
        assert raw.xlen(unique_name) == 6
        got_b = drain(b, 4)[:4]
        b.ack(got_b)
        assert sorted(numbers(got_b)) == [0, 1, 2, 3]
        # What both acknowledged is trimmed; what b has not read stays for b.
        assert raw.xlen(unique_name) == 2
        assert a.lag() == 0 and b.lag() == 2
        rest = drain(b, 2)
        b.ack(rest)
        assert sorted(numbers(rest)) == [4, 5] and raw.xlen(unique_name) == 0
        # A store that joins now starts from what the stream still holds (and everything new).
        publisher.send([batch(7)])
        c = transport.consumer("stemtrace:c", "c-1")
        try:
            assert numbers(drain(c, 1)) == [7]
        finally:
            c.close()
    finally:
        publisher.close()
        a.close()
        b.close()
        raw.delete(unique_name)
