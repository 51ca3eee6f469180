"""Fold worker events into a worker's current picture, in any order.

Each part of the picture (what came up with ``worker.online``, what the latest
heartbeat said, whether it shut down) keeps the timestamp of the event it came from,
so a late or duplicated event never overwrites a newer one. Whether a worker is
online is decided at read time from an injected ``now``: core reads no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from stemtrace.core.events import WORKER_HEARTBEAT, WORKER_OFFLINE, WORKER_ONLINE, Event

# A worker missing this many heartbeat intervals is considered gone.
MISSED_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    hostname: str
    pool: str | None = None
    concurrency: int | None = None
    queues: tuple[str, ...] = ()
    registered: tuple[str, ...] = ()
    pid: int | None = None
    versions: Mapping[str, Any] | None = None
    online_at: float | None = None  # ts of the latest worker.online
    active: tuple[str, ...] = ()
    processed: int | None = None
    loadavg: tuple[float, ...] | None = None
    heartbeat_at: float | None = None  # ts of the latest heartbeat
    offline_at: float | None = None  # ts of the latest worker.offline
    interval: float | None = None  # heartbeat interval the worker announced, if any

    @property
    def last_seen(self) -> float:
        return max(t for t in (self.online_at, self.heartbeat_at, self.offline_at, 0.0) if t is not None)

    @property
    def shut_down(self) -> bool:
        """An offline event newer than anything that said the worker was alive."""
        alive = max(t for t in (self.online_at, self.heartbeat_at, 0.0) if t is not None)
        return self.offline_at is not None and self.offline_at >= alive

    def is_online(self, now: float, default_interval: float) -> bool:
        if self.shut_down:
            return False
        alive = max(t for t in (self.online_at, self.heartbeat_at, 0.0) if t is not None)
        return now - alive <= MISSED_HEARTBEATS * (self.interval or default_interval)

    def status(
        self, now: float, default_interval: float, expire_after: float
    ) -> Literal["online", "offline", "expired"]:
        """``online``; ``offline`` (recently: its last tasks still matter); ``expired`` after
        ``expire_after`` offline, which an autoscaled fleet's Workers page hides by default."""
        if self.is_online(now, default_interval):
            return "online"
        return "expired" if now - self.last_seen > expire_after else "offline"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["queues"] = list(self.queues)
        out["registered"] = list(self.registered)
        out["active"] = list(self.active)
        out["loadavg"] = list(self.loadavg) if self.loadavg is not None else None
        out["versions"] = dict(self.versions) if self.versions is not None else None
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> WorkerRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("queues", "registered", "active"):
            values[key] = tuple(values.get(key) or ())
        if values.get("loadavg") is not None:
            values["loadavg"] = tuple(values["loadavg"])
        return cls(**values)


def worker_name(event: Event) -> str | None:
    """The worker an event is about: ``data.hostname``, else the sender's nodename."""
    name = event.get("hostname")
    if isinstance(name, str) and name:
        return name
    return event.src.node


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return ()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _newer(at: float | None, ts: float) -> bool:
    return at is None or ts >= at


def fold_worker(record: WorkerRecord | None, event: Event) -> WorkerRecord | None:
    """``record`` updated with one worker event; None for an event naming no worker."""
    name = worker_name(event)
    if name is None:
        return record
    rec = record or WorkerRecord(hostname=name)
    ts = event.ts
    interval = event.get("interval")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
        rec = replace(rec, interval=float(interval))
    if event.type == WORKER_ONLINE and _newer(rec.online_at, ts):
        return replace(
            rec,
            online_at=ts,
            pool=event.get("pool") if isinstance(event.get("pool"), str) else rec.pool,
            concurrency=_int(event.get("concurrency")) or rec.concurrency,
            queues=_strs(event.get("queues")) or rec.queues,
            registered=_strs(event.get("registered")) or rec.registered,
            pid=_int(event.get("pid")) or event.src.pid,
            versions=event.get("versions") if isinstance(event.get("versions"), Mapping) else rec.versions,
        )
    if event.type == WORKER_HEARTBEAT and _newer(rec.heartbeat_at, ts):
        load = event.get("loadavg")
        return replace(
            rec,
            heartbeat_at=ts,
            active=_strs(event.get("active")),
            processed=_int(event.get("processed")),
            loadavg=tuple(float(x) for x in load if isinstance(x, (int, float)))
            if isinstance(load, (list, tuple))
            else rec.loadavg,
            pid=rec.pid or event.src.pid,
        )
    if event.type == WORKER_OFFLINE and _newer(rec.offline_at, ts):
        return replace(rec, offline_at=ts)
    return rec
