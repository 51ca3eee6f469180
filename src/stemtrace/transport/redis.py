"""Redis Stream transport (``redis://``, ``rediss://``, ``sentinel://``).

Publishing: one stream entry per batch (field ``b``), sent as a pipelined
``XADD … MAXLEN ~ N`` plus an ``XTRIM … MINID ~ <now - retention>`` at most once
a second, so retention is a real time window, not only an entry count.

Consuming: one consumer group per store (``stemtrace:<store id>``, made by the
server from its store's identity), created at id ``0`` so a new store starts with
what the stream still holds; the replicas of one store are consumers of its group
and share the load, while every store's group sees every entry. ``ack`` is ``XACK``;
after each acknowledgement a consumer trims the stream (``XTRIM MINID``) up to the
oldest entry some group has not acknowledged (its oldest pending entry, or the
first after its last delivered one), so batches leave the user's Redis once every
store has them. A group nobody consumes any more (a store that is gone) holds the
stream back until the publisher's retention trims it: ``/api/health`` lists every
group with its lag, and ``XGROUP DESTROY`` removes one. Entries a dead replica read
but never acknowledged are taken over with ``XAUTOCLAIM`` after 60 s idle.

Delivery: at least once (a replica that crashes after commit but before ack
re-reads the batch; the server de-duplicates on ``(inst, seq)``). Trimming may
drop undelivered batches older than the retention or beyond ``max_length``.

The redis client is the one kombu builds from the same URL and transport
options as the app's broker, so SSL, sentinel ``master_name`` and the
``global_keyprefix`` all behave as for Celery itself. kombu does not prefix
stream commands, so the prefix is added here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from stemtrace.transport.base import Consumer, Delivery, Publisher, Transport, TransportConfig

logger = logging.getLogger("stemtrace.transport")

CLAIM_IDLE_MS = 60_000
_TRIM_EVERY_S = 1.0
_CLAIM_EVERY_S = 30.0


def stream_key(config: TransportConfig) -> str:
    """The stream's key: the user's ``global_keyprefix`` followed by ``config.name``."""
    prefix = str(config.transport_options.get("global_keyprefix") or "")
    return prefix + config.name


def open_client(config: TransportConfig, socket_timeout_s: float) -> tuple[Any, Any]:
    """A ``(kombu.Connection, redis client)`` pair built exactly as kombu would.

    Timeouts are forced so a hung server cannot hold the caller forever, and
    kombu's own reconnect loop is disabled (``max_retries=0``): the caller owns
    backoff.
    """
    # kombu turns a missing redis-py into ``redis = None`` and a later AttributeError; importing it
    # here makes that an ImportError naming the module, which the server reports with its pip command.
    import redis  # noqa: F401

    from stemtrace.transport.kombu import kombu_module

    options = dict(config.transport_options)
    options.update(
        max_retries=0,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=config.connect_timeout_s,
    )
    conn: Any = kombu_module().Connection(
        config.url, transport_options=options, ssl=config.ssl, connect_timeout=config.connect_timeout_s
    )
    try:
        client = conn.default_channel.client
    except BaseException:
        conn.release()
        raise
    return conn, client


def _min_id(retention_s: float) -> str:
    return f"{max(0, int((time.time() - retention_s) * 1000))}-0"


def _parse_id(entry_id: Any) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RedisStreamPublisher(Publisher):
    """Sends batches with one pipelined round trip."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.key = stream_key(config)
        self._conn, self._client = open_client(config, socket_timeout_s=max(config.connect_timeout_s, 1.0))
        self._last_trim = 0.0

    def send(self, batches: Sequence[bytes]) -> None:
        if not batches:
            return
        pipe = self._client.pipeline(transaction=False)
        for payload in batches:
            pipe.xadd(self.key, {"b": payload}, maxlen=self.config.max_length, approximate=True)
        now = time.monotonic()
        if now - self._last_trim >= _TRIM_EVERY_S:
            pipe.xtrim(self.key, minid=_min_id(self.config.retention_s), approximate=True)
            self._last_trim = now
        pipe.execute()

    def close(self) -> None:
        try:
            self._conn.release()
        except Exception:
            pass


class RedisStreamConsumer(Consumer):
    """One member of a consumer group; several replicas share the stream's load."""

    def __init__(self, config: TransportConfig, group: str, consumer_name: str) -> None:
        self.config = config
        self.key = stream_key(config)
        self.group = group
        self.subscription = group
        self.name = consumer_name
        self._conn, self._client = open_client(config, socket_timeout_s=30.0)
        self._ensure_group()
        self._backlog_done = False  # first re-read what this name left pending
        self._last_claim = 0.0

    def _ensure_group(self) -> None:
        from redis.exceptions import ResponseError

        try:
            self._client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _entries(self, reply: Any) -> list[Delivery]:
        out: list[Delivery] = []
        orphans: list[Any] = []
        for entry_id, fields in reply or ():
            payload = (fields or {}).get(b"b")
            if payload is None:  # trimmed after it was read: nothing left to deliver
                orphans.append(entry_id)
                continue
            out.append(Delivery(payload=payload, token=entry_id))
        if orphans:
            self._client.xack(self.key, self.group, *orphans)
        return out

    def poll(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        from redis.exceptions import ResponseError

        count = max(1, max_messages)
        if not self._backlog_done:
            reply = self._client.xreadgroup(self.group, self.name, {self.key: "0"}, count=count)
            got = self._entries(reply[0][1] if reply else [])
            if got:
                return got
            self._backlog_done = True
        now = time.monotonic()
        if now - self._last_claim >= _CLAIM_EVERY_S:
            self._last_claim = now
            claimed = self._client.xautoclaim(
                self.key, self.group, self.name, CLAIM_IDLE_MS, start_id="0-0", count=count
            )
            got = self._entries(claimed[1] if claimed else [])
            if got:
                return got
        block_ms = max(1, int(min(timeout_s, 10.0) * 1000))
        try:
            reply = self._client.xreadgroup(
                self.group, self.name, {self.key: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ensure_group()  # the stream was deleted under us: start again
            return []
        return self._entries(reply[0][1] if reply else [])

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        ids = [d.token for d in deliveries]
        if not ids:
            return
        # No XDEL: another store's group may not have read the entry yet. Trimming after each
        # acknowledged poll (a few round trips per batch of up to 5,000 events) keeps the
        # stream as short as the slowest group allows.
        self._client.xack(self.key, self.group, *ids)
        try:
            self.trim_acknowledged()
        except Exception as exc:  # the acknowledgement stands; the next one trims
            logger.debug("stemtrace: trimming %s failed: %s", self.key, exc)

    def trim_acknowledged(self) -> int:
        """Delete the entries every group has acknowledged; returns how many went.

        Everything below the lowest of (each group's oldest pending entry, or the entry
        after its last delivered one) was read and acknowledged by every group. Reading the
        groups before their pending summaries keeps that bound safe against a group moving
        on in between (its pending minimum only grows, its position was read first).
        """
        groups = self._client.xinfo_groups(self.key)
        floor: tuple[int, int] | None = None
        for g in groups:
            ms, seq = _parse_id(g.get("last-delivered-id") or b"0-0")
            bound = (ms, seq + 1)
            if int(g.get("pending") or 0):
                summary = self._client.xpending(self.key, g["name"])
                if summary.get("min"):
                    bound = min(bound, _parse_id(summary["min"]))
            floor = bound if floor is None else min(floor, bound)
        if floor is None or floor <= (0, 1):
            return 0
        return int(self._client.xtrim(self.key, minid=f"{floor[0]}-{floor[1]}", approximate=False))

    def _own_group(self) -> dict[str, Any] | None:
        for g in self._client.xinfo_groups(self.key):
            if _text(g.get("name")) == self.group:
                return dict(g)
        return None

    def lag(self) -> int | None:
        """Entries this group has not been delivered yet: Redis's own count (7.0+), else the
        entries after the group's position (counted up to 100,000)."""
        try:
            g = self._own_group()
            if g is None:
                return None
            if g.get("lag") is not None:
                return int(g["lag"])
            last = _text(g.get("last-delivered-id") or "0-0")
            return len(self._client.xrange(self.key, min=f"({last}", max="+", count=100_000))
        except Exception:
            return None

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every consumer group on the stream: other stores (and stale ones) included."""
        try:
            groups = self._client.xinfo_groups(self.key)
        except Exception:
            return []
        out = []
        for g in groups:
            name = _text(g.get("name"))
            lag = g.get("lag")
            out.append(
                {
                    "name": name,
                    "own": name == self.group,
                    "consumers": int(g.get("consumers") or 0),
                    "pending": int(g.get("pending") or 0),
                    "lag": int(lag) if lag is not None else None,
                    "position": _text(g.get("last-delivered-id")),
                }
            )
        return out

    def close(self) -> None:
        try:
            self._conn.release()
        except Exception:
            pass


class RedisStreamTransport(Transport):
    """Redis family: a stream per app, trimmed by age and by length."""

    schemes = ("redis", "rediss", "sentinel", "redis+socket")

    def publisher(self) -> Publisher:
        return RedisStreamPublisher(self.config)

    def consumer(self, group: str, consumer_name: str) -> Consumer:
        return RedisStreamConsumer(self.config, group, consumer_name)
