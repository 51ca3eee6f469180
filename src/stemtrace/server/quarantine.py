"""Quarantine: events ingest acknowledges without storing them, kept countable and inspectable.

Before quarantine, one event the store could not take stalled ingest forever: the batch
holding it was retried, and everything behind it waited (across restarts). Now an event is
quarantined when

- validation rejects it (its identity cannot be stored as it is: ``bad_id``, ``bad_seq``,
  ``bad_canvas``),
- a whole message cannot even be decoded (``undecodable``: e.g. JSON nested past the
  parser's recursion limit), or
- the store refuses it alone, after its batch failed and was split down to it
  (``store_rejected``).

The quarantine table is bounded: one row per ``(reason, kind)``, with the count, the first and
last time seen, the latest error detail and a capped sample of the event's text. Reasons are
the fixed labels above, and ``kind`` is an event type or ``message``, so the rows are few.

Which failures are the data's and which the store's decides between quarantining and pausing:
:func:`is_data_error`. A store fault (unreachable, disk full, file removed) must never make
good events look bad, so only errors a value can cause count as the data's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from stemtrace.core.events import EVENT_TYPES, Event
from stemtrace.server.store.base import Changes, Store, StoreError
from stemtrace.server.validate import clean_text, preview

SAMPLE_MAX: Final = 2048
DETAIL_MAX: Final = 500
REASONS: Final = frozenset({"bad_id", "bad_seq", "bad_canvas", "undecodable", "store_rejected", "invalid"})
RECENT_S: Final = 900.0  # quarantining within this long makes /api/health "degraded"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One event (or undecodable message) set aside."""

    reason: str
    kind: str  # the event type, or "message" for a payload that never became events
    detail: str
    sample: str

    @classmethod
    def of_event(cls, reason: str, event: Event, detail: str) -> Quarantined:
        return cls(_reason(reason), _kind(event.type), clean_text(detail, DETAIL_MAX), sample_event(event))

    @classmethod
    def of_payload(cls, reason: str, payload: bytes | str, detail: str) -> Quarantined:
        return cls(_reason(reason), "message", clean_text(detail, DETAIL_MAX), sample_payload(payload))


def _reason(reason: str) -> str:
    return reason if reason in REASONS else "invalid"


def _kind(etype: Any) -> str:
    return etype if isinstance(etype, str) and etype in EVENT_TYPES else "other"


def sample_event(event: Event) -> str:
    """The event's envelope as ASCII JSON, cut at :data:`SAMPLE_MAX` (nesting kept shallow)."""
    try:
        src = event.src
        head = {
            "type": event.type,
            "ts": event.ts,
            "src": {"host": src.host, "pid": src.pid, "inst": src.inst, "seq": src.seq},
            "task": {"id": event.task_id, "name": event.task_name},
        }
        return preview({**head, "data": preview(event.data, SAMPLE_MAX)}, SAMPLE_MAX)
    except Exception:  # a sample must never be why quarantining fails
        return "<no sample>"


def sample_payload(payload: bytes | str) -> str:
    raw = payload[:SAMPLE_MAX] if isinstance(payload, (bytes, str)) else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return clean_text(text.encode("ascii", "backslashreplace").decode("ascii"), SAMPLE_MAX)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` is something a stored value caused (split the batch, quarantine what
    fails alone); False for a store fault (pause, acknowledge nothing, retry)."""
    if isinstance(exc, (StoreError, OSError, MemoryError)):
        return False
    if isinstance(exc, sqlite3.Error):
        # OperationalError: disk full, file gone or locked, table missing; a plain
        # DatabaseError: "file is not a database". None of them is the event's fault, nor is
        # a connection closed under the loop (a ProgrammingError).
        if "closed" in str(exc):
            return False
        return isinstance(
            exc, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
        )
    psycopg_error = _psycopg_data_error(exc)
    if psycopg_error is not None:
        return psycopg_error
    # Python-level errors raised while planning or binding an event's values.
    return isinstance(exc, (ValueError, TypeError, OverflowError, RecursionError, KeyError, IndexError))


def _psycopg_data_error(exc: BaseException) -> bool | None:
    """For a psycopg error: whether it is the data's (None when ``exc`` is not psycopg's)."""
    try:
        import psycopg
        from psycopg import errors
    except ImportError:
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    # ProgramLimitExceeded ("index row size exceeds maximum") is an OperationalError by class.
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, errors.ProgramLimitExceeded))


def salvage(
    store: Store, events: Sequence[Event], malformed: Mapping[str, int], now: float, source: str = ""
) -> Salvaged:
    """Store what can be stored of a batch that failed as a whole.

    The batch is split in halves, and each half that fails again in halves, until every failing
    event is alone: those are returned as quarantined (``store_rejected``), everything else is
    stored. A poison event costs about ``2 log2(n)`` small transactions. A store fault on the
    way is raised: nothing may then be acknowledged, and what was stored is stored again,
    harmlessly, when the batch comes back.
    """
    result = Salvaged()
    pinged = False
    parts: list[Sequence[Event]] = [events[len(events) // 2 :], events[: len(events) // 2]]
    while parts:
        part = parts.pop()
        if not part:
            continue
        try:
            applied = store.apply(part, {}, now, source)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(part) > 1:
                parts += [part[len(part) // 2 :], part[: len(part) // 2]]
                continue
            if not pinged:  # before the first quarantine: a store that went away is no event's fault
                store.ping()
                pinged = True
            detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            result.quarantined.append(Quarantined.of_event("store_rejected", part[0], detail))
            continue
        result.stored += applied.stored
        result.changes.append(applied.changes)
    if any(malformed.values()):
        store.apply([], malformed, now)
    return result


@dataclass(slots=True)
class Salvaged:
    stored: int = 0
    changes: list[Changes] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def merged_changes(self) -> Changes:
        tasks: set[str] = set()
        workflows: set[str] = set()
        workers: set[str] = set()
        task_workflows: dict[str, str] = {}
        for c in self.changes:
            tasks |= c.tasks
            workflows |= c.workflows
            workers |= c.workers
            task_workflows.update(c.task_workflows)
        return Changes(frozenset(tasks), frozenset(workflows), frozenset(workers), task_workflows)
