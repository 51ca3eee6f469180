"""The JSON shapes of the server's own health (pydantic): ``GET /api/health``, its quarantine and
its loss records. The task, workflow and worker shapes are in ``schemas``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class SourceHealth(BaseModel):
    """One labelled event source's ingest (``--source NAME=URL``)."""

    name: str
    url: str = Field(description="its broker URL, password masked")
    status: str
    error: str | None = None
    events: int
    lag: int | None = Field(None, description="messages waiting for this server on it")


class Subscription(BaseModel):
    """One store's subscription on the event broker (Redis consumer group, RabbitMQ queue)."""

    name: str
    own: bool = Field(description="this server's store consumes through it")
    consumers: int | None = None
    pending: int | None = Field(None, description="delivered, not yet acknowledged (Redis)")
    lag: int | None = Field(None, description="messages waiting for it")
    position: str | None = Field(None, description="last delivered stream entry (Redis)")
    last_heard_s: float | None = Field(None, description="seconds since its server announced it (RabbitMQ)")


class Retention(BaseModel):
    """The retention in force, and whether it keeps up."""

    retention_s: float
    failure_retention_s: float
    max_tasks: int | None
    expired_workflows: int
    evicted_workflows: int
    behind: bool = Field(description="the last round ran out of time with expired workflows left")
    last_run_at: datetime | None


class IngestHealth(BaseModel):
    enabled: bool
    status: str
    error: str | None
    source: str | None
    events: int
    stored: int
    batches: int
    rate_per_s: float
    lag: int | None
    last_commit_at: datetime | None
    malformed: dict[str, int]
    quarantined: dict[str, int] = Field(
        default_factory=dict, description="events set aside, by reason (all replicas; GET /api/quarantine)"
    )
    repaired: dict[str, int] = Field(
        default_factory=dict, description="events stored after repair at the edge, by what (this replica)"
    )
    restarts: int = Field(0, description="times the ingest loop was restarted after a crash")
    lag_seconds: float | None = Field(
        None, description="0 when caught up, else the seconds since ingest last had nothing waiting"
    )
    subscription: str | None = Field(None, description="this store's subscription on the broker")
    subscriptions: list[Subscription] = Field(
        default_factory=list, description="every subscription seen on the same broker, this one included"
    )
    sources: list[SourceHealth] = Field(
        default_factory=list,
        description="each labelled event source (--source NAME=URL); the other fields describe the first",
    )


class StoreHealth(BaseModel):
    url: str
    ok: bool
    error: str | None
    schema_version: int
    workflows: int | None


class LibraryHealth(BaseModel):
    processes: int
    sent: int
    dropped: int
    errors: int
    sources: list[dict[str, Any]]


class QuarantineEntry(BaseModel):
    """Events ingest acknowledged without storing them, for one reason and event type."""

    reason: str = Field(description="bad_id, bad_seq, bad_canvas, undecodable, store_rejected or invalid")
    kind: str = Field(description='the event type, or "message" for a payload that never became events')
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    detail: str = Field(description="why the latest one was set aside")
    sample: str = Field(description="the latest one's text, ASCII, cut at 2 KiB")


class QuarantineList(BaseModel):
    items: list[QuarantineEntry]


class LossRecord(BaseModel):
    """Events of one library process that never arrived (a sequence gap past the grace period)."""

    inst: str = Field(description="the library process instance (new on every fork or restart)")
    host: str | None
    pid: int | None
    first_seq: int
    last_seq: int
    count: int
    cause: str = Field(description="buffer overflow | missing after broker trimming | unknown")
    start: datetime | None = Field(description="time of the event before the gap (none: from seq 1)")
    end: datetime | None = Field(description="time of the event after the gap")
    detected_at: datetime | None


class Losses(BaseModel):
    """Events known lost (sequence gaps), all time and recently, with the latest records."""

    total: int
    recent: int = Field(description="events recorded lost within recent_window_s; non-zero means degraded")
    recent_window_s: float
    grace_s: float = Field(description="how long a gap may stay open before it counts as lost")
    by_cause: dict[str, int]
    latest: list[LossRecord]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    reasons: list[str] = Field(default_factory=list, description="why the status is degraded")
    version: str
    ingest: IngestHealth
    store: StoreHealth
    library: LibraryHealth
    retention: Retention | None = None
    losses: Losses | None = None
