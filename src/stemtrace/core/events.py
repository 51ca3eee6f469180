"""The event schema: what the library sends and the server folds into state.

One schema, shared by both halves, so they cannot drift. Events are plain JSON
objects; :func:`decode_event` turns one into an immutable :class:`Event` or raises
:class:`MalformedEvent` with a reason the server counts and logs once per kind.

On the wire a transport message is one batch of events from one process, in rows where it
can: :mod:`stemtrace.core.wire` holds that format. Here is the event itself.

Envelope (schema version 1)::

    {"v": 1, "type": "task.published", "ts": 1795480694.309,
     "src": {"host": "vm", "pid": 6159, "inst": "9f0c…", "seq": 17,
             "proc": "child", "node": "w1@vm"},
     "task": {"id": "…", "name": "proj.add"},      # task events only
     "data": {…}}                                  # per type, see docs/events.md

``ts`` is the emitting process's wall clock (epoch seconds). ``(src.inst, src.seq)``
identifies an event uniquely: the server de-duplicates on it and detects drops from
gaps. Unknown ``data`` keys are kept, so a newer library can add fields without
breaking an older server; an unknown *major* ``v`` is rejected as malformed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from stemtrace.core.slots import slot_setters

SCHEMA_VERSION: Final = 1

# Event types, named after the Celery signal or lifecycle step they report.
TASK_PUBLISHED: Final = "task.published"  # after_task_publish, any process that sends
TASK_RECEIVED: Final = "task.received"  # task_received, worker main process
TASK_STARTED: Final = "task.started"  # task_prerun, executing process
TASK_SUCCEEDED: Final = "task.succeeded"  # task_postrun with state SUCCESS
TASK_FAILED: Final = "task.failed"  # task_failure (executing process, or main for lost/hard limit)
TASK_RETRIED: Final = "task.retried"  # task_retry
TASK_POSTRUN: Final = "task.postrun"  # task_postrun: state SUCCESS/FAILURE/RETRY/IGNORED/REJECTED/None
TASK_REVOKED: Final = "task.revoked"  # task_revoked, worker main process
TASK_REJECTED: Final = "task.rejected"  # task_rejected (undecodable/disallowed message)
TASK_UNKNOWN: Final = "task.unknown"  # task_unknown (name not registered on the worker)
TASK_INTERNAL_ERROR: Final = "task.internal_error"  # task_internal_error
# The outcome a prefork child returned to the worker's main process, sent by the main process
# only when that child died soon after (its own events of the task may have died with it).
TASK_READY: Final = "task.ready"
WORKER_ONLINE: Final = "worker.online"
WORKER_HEARTBEAT: Final = "worker.heartbeat"
WORKER_OFFLINE: Final = "worker.offline"
LIBRARY_HEALTH: Final = "library.health"  # publisher counters: sent, dropped, buffer depth

TASK_EVENT_TYPES: Final = frozenset(
    {
        TASK_PUBLISHED,
        TASK_RECEIVED,
        TASK_STARTED,
        TASK_SUCCEEDED,
        TASK_FAILED,
        TASK_RETRIED,
        TASK_POSTRUN,
        TASK_REVOKED,
        TASK_REJECTED,
        TASK_UNKNOWN,
        TASK_INTERNAL_ERROR,
        TASK_READY,
    }
)
WORKER_EVENT_TYPES: Final = frozenset({WORKER_ONLINE, WORKER_HEARTBEAT, WORKER_OFFLINE})
EVENT_TYPES: Final = TASK_EVENT_TYPES | WORKER_EVENT_TYPES | {LIBRARY_HEALTH}

# Process roles, as seen from Celery: a sender outside any worker, the worker's main
# (consumer) process, or the process/thread/greenlet that executes task bodies.
PROC_ROLES: Final = frozenset({"client", "main", "child", "thread", "greenlet", "solo", "beat"})

# Markers the library puts inside captured values so the UI can show what happened.
# A cut value: {"__stemtrace_truncated__": True, "preview": ..., "size": n}
TRUNCATED_KEY: Final = "__stemtrace_truncated__"
REDACTED: Final = "[redacted]"
REPR_KEY: Final = "__stemtrace_repr__"  # {"__stemtrace_repr__": "<safe repr>", "type": "module.Class"}


class MalformedEvent(ValueError):
    """An event that cannot be applied; ``kind`` is a short stable label for counting."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Source:
    """Who emitted an event: one process (``inst`` changes on every fork/restart)."""

    host: str
    pid: int
    inst: str
    seq: int
    proc: str = "client"
    node: str | None = None  # Celery nodename (``w1@host``) when inside a worker


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event. ``data`` keeps every field the sender put there."""

    type: str
    ts: float
    src: Source
    task_id: str | None = None
    task_name: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple[str, int]:
        """Identity used for exactly-once application of at-least-once deliveries."""
        return (self.src.inst, self.src.seq)

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": self.v,
            "type": self.type,
            "ts": self.ts,
            "src": {
                "host": self.src.host,
                "pid": self.src.pid,
                "inst": self.src.inst,
                "seq": self.src.seq,
                "proc": self.src.proc,
                "node": self.src.node,
            },
            "data": dict(self.data),
        }
        if self.task_id is not None:
            out["task"] = {"id": self.task_id, "name": self.task_name}
        return out


def _str(obj: Mapping[str, Any], key: str, kind: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedEvent(kind, f"{key!r} must be a non-empty string")
    return value


def _int(obj: Mapping[str, Any], key: str, kind: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(kind, f"{key!r} must be an integer")
    return value


_NO_DATA: Final[Any] = object()


# Decoding builds two frozen dataclasses per event, and their generated ``__init__`` sets
# every field through ``object.__setattr__``. Filling the slots directly builds the very
# same objects (equal, same hash) in about half the time: a quarter of decode_event.
_new = object.__new__
_SET_HOST, _SET_PID, _SET_INST, _SET_SEQ, _SET_PROC, _SET_NODE = slot_setters(
    Source, ("host", "pid", "inst", "seq", "proc", "node")
)
_SET_TYPE, _SET_TS, _SET_SRC, _SET_TASK_ID, _SET_TASK_NAME, _SET_DATA, _SET_V = slot_setters(
    Event, ("type", "ts", "src", "task_id", "task_name", "data", "v")
)


def decode_event(raw: Any, batch_src: Mapping[str, Any] | None = None) -> Event:
    """Validate one wire object (already JSON-decoded) and return an :class:`Event`.

    ``batch_src`` is a compact batch's ``src``: the event then states only its ``seq``
    (and ``proc``/``node`` where they differ) and its schema version is the batch's.
    """
    # This runs once per ingested event: exact-type checks (what JSON produces) come
    # first, the general ``isinstance`` checks only for anything else.
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise MalformedEvent("not_an_object", type(raw).__name__)
    get = raw.get
    version = get("v") if batch_src is None else SCHEMA_VERSION
    if type(version) is not int and (isinstance(version, bool) or not isinstance(version, int)):
        raise MalformedEvent("bad_version", repr(version)[:40])
    if version > SCHEMA_VERSION:
        raise MalformedEvent("newer_schema", f"v={version}, this server understands v<={SCHEMA_VERSION}")
    if version < 1:
        raise MalformedEvent("bad_version", repr(version))
    etype, ts = _type_and_ts(get)
    src = get("src") if batch_src is None else merged_src(raw, batch_src)
    return _event(get, etype, ts, _source(src), version)


def _type_and_ts(get: Callable[[str], Any]) -> tuple[str, float]:
    etype = get("type")
    if not isinstance(etype, str) or etype not in EVENT_TYPES:
        raise MalformedEvent("unknown_type", repr(etype)[:60])
    ts = get("ts")
    if type(ts) is not float and (isinstance(ts, bool) or not isinstance(ts, (int, float))):
        raise MalformedEvent("bad_timestamp", repr(ts)[:40])
    if not math.isfinite(ts) or ts <= 0:
        raise MalformedEvent("bad_timestamp", repr(ts)[:40])
    return etype, float(ts)


def _source(src: Any) -> Source:
    if type(src) is not dict and not isinstance(src, Mapping):
        raise MalformedEvent("bad_source", "'src' must be an object")
    src_get = src.get
    host = src_get("host")
    if type(host) is not str or not host:
        host = _str(src, "host", "bad_source")
    pid = src_get("pid")
    if type(pid) is not int:
        pid = _int(src, "pid", "bad_source")
    inst = src_get("inst")
    if type(inst) is not str or not inst:
        inst = _str(src, "inst", "bad_source")
    seq = src_get("seq")
    if type(seq) is not int:
        seq = _int(src, "seq", "bad_source")
    node = src_get("node")
    proc = str(src_get("proc") or "client")
    node = node if isinstance(node, str) else None
    return _new_source(host or "", pid, inst or "", seq, proc=proc, node=node)


def _new_source(host: str, pid: int, inst: str, seq: int, *, proc: str, node: str | None) -> Source:
    """``Source(host, pid, inst, seq, proc, node)`` by filling its slots (see slot_setters)."""
    source = _new(Source)
    _SET_HOST(source, host)
    _SET_PID(source, pid)
    _SET_INST(source, inst)
    _SET_SEQ(source, seq)
    _SET_PROC(source, proc)
    _SET_NODE(source, node)
    return source


def _event(get: Callable[..., Any], etype: str, ts: float, source: Source, version: int) -> Event:
    """The part of decoding after the source: ``data``, ``task`` and the event itself."""
    data = get("data", _NO_DATA)
    if type(data) is not dict:
        if data is _NO_DATA or data is None:
            data = {}
        elif not isinstance(data, Mapping):
            raise MalformedEvent("bad_data", "'data' must be an object")
    task_id: str | None = None
    task_name: str | None = None
    if etype in TASK_EVENT_TYPES:
        task = get("task")
        if type(task) is not dict and not isinstance(task, Mapping):
            raise MalformedEvent("missing_task", f"{etype} needs 'task'")
        task_id = task.get("id")
        if type(task_id) is not str or not task_id:
            task_id = _str(task, "id", "bad_task_id")
        name = task.get("name")
        task_name = name if isinstance(name, str) and name else None
    event = _new(Event)  # Event(etype, ts, source, task_id, task_name, data, version)
    _SET_TYPE(event, etype)
    _SET_TS(event, ts)
    _SET_SRC(event, source)
    _SET_TASK_ID(event, task_id)
    _SET_TASK_NAME(event, task_name)
    _SET_DATA(event, data)
    _SET_V(event, version)
    return event


def batch_source(batch_src: Mapping[str, Any]) -> Source | None:
    """The batch's source validated once (``seq`` 0), or None when it is unusable: every
    event then goes through :func:`decode_event`, which reports it."""
    try:
        return _source({**batch_src, "seq": 0})
    except MalformedEvent:
        return None


def decode_in_batch(item: dict[str, Any], base: Source) -> Event:
    """:func:`decode_event` for an item of a batch (``core.wire``) that states no ``proc``/``node``
    of its own, ``base`` the batch's :func:`batch_source`: the same checks in the same order, the
    source's other checks done once. (An inline copy of these checks for the commonest task
    event saved 0.3-0.4% of ingest CPU on the realistic workload and was removed; ADR 0008.)"""
    get = item.get
    seq = get("seq")
    etype, ts = _type_and_ts(get)
    if type(seq) is not int:
        seq = _int(item, "seq", "bad_source")
    source = _new_source(base.host, base.pid, base.inst, seq, proc=base.proc, node=base.node)
    return _event(get, etype, ts, source, SCHEMA_VERSION)


def merged_src(item: Any, batch_src: Mapping[str, Any]) -> Any:
    """The full ``src`` of one event of a compact batch: the batch's, with the event's own parts."""
    if type(item) is not dict and not isinstance(item, Mapping):
        return None  # decode_event reports the item itself as not_an_object
    get = item.get
    src = dict(batch_src)
    src["seq"] = get("seq")
    if "proc" in item:
        src["proc"] = get("proc")
    if "node" in item:
        src["node"] = get("node")
    return src
