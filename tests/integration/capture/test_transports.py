"""Each transport's publisher and consumer together, on the real brokers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu.connection import Connection

from stemtrace.core.wire import decode_batch, encode_batch
from stemtrace.transport import TransportConfig, config_from_app, resolve
from stemtrace.transport.amqp import AmqpTransport
from stemtrace.transport.inproc import InProcTransport, forget
from stemtrace.transport.kombu import KombuTransport
from stemtrace.transport.redis import RedisStreamTransport, stream_key

pytestmark = pytest.mark.integration


def _batch(n: int) -> bytes:
    return encode_batch(
        [{"type": "library.health", "ts": time.time(), "seq": n, "data": {"n": n}}],
        {"host": "h", "pid": 1, "inst": "i"},
    )


@pytest.fixture
def redis_config(redis_url: str, unique_name: str) -> Iterator[TransportConfig]:
    config = TransportConfig(url=redis_url, name=unique_name, transport_options={"global_keyprefix": "pfx:"})
    yield config
    client = redis.Redis.from_url(redis_url)
    client.delete(stream_key(config))
    client.close()


def test_registry_picks_by_scheme() -> None:
    assert isinstance(resolve(TransportConfig(url="redis://h/0")), RedisStreamTransport)
    assert isinstance(resolve(TransportConfig(url="sentinel://a:1;sentinel://b:2")), RedisStreamTransport)
    assert isinstance(resolve(TransportConfig(url="pyamqp://h//")), AmqpTransport)
    assert isinstance(resolve(TransportConfig(url="inproc://x")), InProcTransport)
    fallback = resolve(TransportConfig(url="sqs://"))
    assert type(fallback) is KombuTransport


def test_config_from_app_takes_broker_options() -> None:
    from celery import Celery

    app = Celery(set_as_current=False)
    app.conf.broker_url = ["redis://a:1/0", "redis://b:1/0"]
    app.conf.broker_transport_options = {"global_keyprefix": "x:", "master_name": "m"}
    app.conf.broker_use_ssl = {"ssl_cert_reqs": "none"}
    config = config_from_app(app, name="ev", url=None)
    assert config.url == "redis://a:1/0;redis://b:1/0"
    assert config.transport_options["global_keyprefix"] == "x:"
    assert config.ssl == {"ssl_cert_reqs": "none"}
    assert config.name == "ev"


def test_redis_stream_round_trip_ack_and_lag(redis_config: TransportConfig, redis_url: str) -> None:
    transport = resolve(redis_config)
    publisher = transport.publisher()
    consumer = transport.consumer("servers", "replica-1")
    publisher.send([_batch(i) for i in range(5)])
    raw = redis.Redis.from_url(redis_url)
    assert raw.xlen("pfx:" + redis_config.name) == 5  # the user's key prefix is honoured
    assert consumer.lag() == 5
    got = consumer.poll(3, 1.0)
    assert [decode_batch(d.payload)[0][0].data["n"] for d in got] == [0, 1, 2]
    assert consumer.lag() == 2
    consumer.ack(got)
    rest = consumer.poll(10, 1.0)
    assert len(rest) == 2
    consumer.ack(rest)
    assert consumer.lag() == 0 and raw.xlen("pfx:" + redis_config.name) == 0
    assert consumer.poll(10, 0.1) == []
    publisher.close()
    consumer.close()
    raw.close()


def test_redis_unacked_entries_are_redelivered_to_a_restarted_replica(redis_config: TransportConfig) -> None:
    transport = resolve(redis_config)
    publisher = transport.publisher()
    publisher.send([_batch(1), _batch(2)])
    first = transport.consumer("servers", "replica-1")
    assert len(first.poll(10, 1.0)) == 2
    first.close()  # crashed before acknowledging
    again = transport.consumer("servers", "replica-1")
    redelivered = again.poll(10, 1.0)
    assert len(redelivered) == 2
    again.ack(redelivered)
    other = transport.consumer("servers", "replica-2")
    assert other.poll(10, 0.1) == []
    publisher.close()
    again.close()
    other.close()


def test_redis_trims_by_age(redis_config: TransportConfig, redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    key = "pfx:" + redis_config.name
    old_ms = int((time.time() - 3600) * 1000)
    for i in range(300):
        raw.xadd(key, {"b": b"[]"}, id=f"{old_ms}-{i}")
    short = TransportConfig(
        url=redis_config.url,
        name=redis_config.name,
        transport_options=redis_config.transport_options,
        retention_s=60,
    )
    publisher = resolve(short).publisher()
    publisher.send([_batch(1)])
    # MINID ~ trims whole radix-tree nodes: the hour-old entries go, the new one stays.
    assert raw.xlen(key) < 301
    assert raw.xrange(key, count=1)
    publisher.close()
    raw.close()


@pytest.fixture
def amqp_config(amqp_url: str, unique_name: str) -> Iterator[TransportConfig]:
    config = TransportConfig(url=amqp_url, name=unique_name, max_length=3, retention_s=1.0)
    yield config
    with Connection(amqp_url) as conn:
        conn.default_channel.queue_delete(unique_name)


def test_amqp_queue_is_bounded_by_length_and_age(amqp_config: TransportConfig) -> None:
    transport = resolve(amqp_config)
    publisher = transport.publisher()
    publisher.send([_batch(i) for i in range(5)])
    consumer = transport.consumer("servers", "replica-1")
    got = consumer.poll(10, 1.0)
    # x-max-length 3 with drop-head: the two oldest batches went first.
    assert [decode_batch(d.payload)[0][0].data["n"] for d in got] == [2, 3, 4]
    consumer.ack(got)
    consumer.close()
    publisher.send([_batch(9)])
    time.sleep(1.5)  # x-message-ttl = retention
    again = transport.consumer("servers", "replica-1")
    assert again.poll(10, 0.3) == []
    assert again.lag() == 0
    again.close()
    publisher.close()


def test_amqp_unacked_batches_return_to_the_queue(amqp_url: str, unique_name: str) -> None:
    config = TransportConfig(url=amqp_url, name=unique_name)
    transport = resolve(config)
    publisher = transport.publisher()
    publisher.send([_batch(1)])
    first = transport.consumer("servers", "a")
    assert len(first.poll(10, 1.0)) == 1
    first.close()
    second = transport.consumer("servers", "b")
    got = second.poll(10, 2.0)
    assert len(got) == 1
    second.ack(got)
    second.close()
    publisher.close()
    with Connection(amqp_url) as conn:
        conn.default_channel.queue_delete(unique_name)


def test_generic_kombu_transport_on_memory() -> None:
    config = TransportConfig(url="memory://", name=f"st-{uuid.uuid4().hex}")
    transport = resolve(config)
    publisher = transport.publisher()
    publisher.send([_batch(1), _batch(2)])
    consumer = transport.consumer("g", "c")
    got = consumer.poll(10, 0.5)
    assert len(got) == 2 and isinstance(got[0].payload, bytes)
    consumer.ack(got)
    consumer.close()
    publisher.close()


def test_inproc_transport_is_bounded_drop_head() -> None:
    name = f"st-{uuid.uuid4().hex}"
    transport = resolve(TransportConfig(url=f"inproc://{name}", max_length=2))
    transport.publisher().send([_batch(1), _batch(2), _batch(3)])
    consumer = transport.consumer("g", "c")
    got = consumer.poll(10, 0.1)
    assert [decode_batch(d.payload)[0][0].data["n"] for d in got] == [2, 3]
    forget(name)
