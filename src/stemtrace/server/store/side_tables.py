"""The store's small tables: its identity (``store_meta``), the quarantine of refused events and
the counters ``/api/health`` reads.

Plain functions over a connection, like ``seen`` and ``alert_log``; ``SqlStore`` only opens the
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from stemtrace.server.jsonfast import loads
from stemtrace.server.store import rollups_schema
from stemtrace.server.store.db import Dialect

if TYPE_CHECKING:
    from stemtrace.server.store.read import Reader
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


def library_reports(r: Reader) -> list[dict[str, Any]]:
    """The latest health report of each library process, newest first (at most 1,000)."""
    # Up to 1,000 reports parsed per call: orjson (``jsonfast``) does it in ~1 ms where ``json``
    # took 4-30 ms (docs/benchmarks-server.md, "Health and metrics").
    return [
        {
            **loads(detail),  # first: the row's own columns are what it says
            "inst": inst,
            "host": host,
            "pid": pid,
            "seq": int(seq),
            "ts": float(ts),
        }
        for inst, host, pid, seq, ts, detail in r.q(
            "SELECT inst, host, pid, seq, ts, detail FROM library_health ORDER BY ts DESC LIMIT 1000"
        )
    ]


def counters(r: Reader, *, library: bool = True) -> dict[str, Any]:
    """What ``/api/health`` reports from the store's tables: events refused as malformed, the
    latest health report of each library process (unless ``library`` is False: the server
    reads those apart, see ``server/library_reports.py``), how many workflows, and the quarantine."""
    q = r.q
    malformed = {str(k): int(n) for k, n in q("SELECT kind, count FROM malformed ORDER BY kind")}
    health = library_reports(r) if library else []
    stored = rollups_schema.stored_count(r.conn, r.d, "workflows")  # no COUNT(*) per call
    quarantined: dict[str, int] = {}
    last_quarantined = None
    for reason, count, last_seen in q("SELECT reason, count, last_seen FROM quarantine"):
        quarantined[str(reason)] = quarantined.get(str(reason), 0) + int(count)
        last_quarantined = max(float(last_seen), last_quarantined or 0.0)
    return {
        "malformed": malformed,
        "library": health,
        "workflows": int(stored),
        "quarantined": quarantined,
        "last_quarantined_at": last_quarantined,
    }
