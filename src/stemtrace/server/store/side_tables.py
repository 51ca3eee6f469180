"""The store's small tables: its identity (``store_meta``) and the quarantine of refused events.

Plain functions over a connection, like ``seen`` and ``alert_log``; ``SqlStore`` only opens the
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from stemtrace.server.store.db import Dialect

if TYPE_CHECKING:
    from stemtrace.server.store.write import BatchWriter

_QUARANTINE_KEYS = ("reason", "kind", "count", "first_seen", "last_seen", "detail", "sample")


def store_id(conn: Any, dialect: Dialect, now: float) -> str:
    """The id made by the first replica to ask (the others find it), and when it was made."""
    insert = dialect.sql("INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
    conn.execute(insert, ("store_id", uuid.uuid4().hex))
    # When this store began to subscribe: events sent before it were never meant for it (see
    # ``seen.settle``'s leading gaps).
    conn.execute(insert, ("created_at", repr(now)))
    found = conn.execute(dialect.sql("SELECT value FROM store_meta WHERE key = ?"), ("store_id",)).fetchone()
    return str(found[0])


def quarantine_rows(entries: Sequence[Any], now: float) -> list[tuple[Any, ...]]:
    """One row per (reason, kind): how many, and the latest entry's detail and sample."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for entry in entries:
        grouped.setdefault((entry.reason, entry.kind), []).append(entry)
    return [
        (reason, kind, len(found), now, now, found[-1].detail, found[-1].sample)
        for (reason, kind), found in sorted(grouped.items())
    ]


def record_quarantine(w: BatchWriter, rows: Sequence[tuple[Any, ...]]) -> None:
    w.many(
        "INSERT INTO quarantine (reason, kind, count, first_seen, last_seen, detail, sample) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reason, kind) DO UPDATE SET "
        "count = quarantine.count + excluded.count, last_seen = excluded.last_seen, "
        "detail = excluded.detail, sample = excluded.sample",
        rows,
    )


def quarantine(q: Callable[..., list[tuple[Any, ...]]]) -> list[dict[str, Any]]:
    found = q(f"SELECT {', '.join(_QUARANTINE_KEYS)} FROM quarantine ORDER BY last_seen DESC, reason, kind")
    return [dict(zip(_QUARANTINE_KEYS, row, strict=True)) for row in found]
