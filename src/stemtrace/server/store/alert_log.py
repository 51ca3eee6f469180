"""The ``alert_log`` table: which alert keys were sent, so each is sent once by one replica.

An alert key names an incident and, for throttled rules, its window (``rule:group:window``). A
replica *claims* keys by inserting them; the primary key lets exactly one insert win, on SQLite and
on PostgreSQL alike, and only the winner sends. A send that fails releases its keys so the next
evaluation tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stemtrace.server.store.db import Dialect


def claim(conn: Any, dialect: Dialect, rule: str, keys: Sequence[str], now: float) -> list[str]:
    """The keys this call inserted (the others were claimed before, here or by another replica)."""
    sql = dialect.sql(
        "INSERT INTO alert_log (key, rule, sent_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"
    )
    return [key for key in dict.fromkeys(keys) if conn.execute(sql, (key, rule, now)).rowcount == 1]


def release(conn: Any, dialect: Dialect, keys: Sequence[str]) -> None:
    sql = dialect.sql("DELETE FROM alert_log WHERE key = ?")
    for key in keys:
        conn.execute(sql, (key,))


def expire(conn: Any, dialect: Dialect, before: float) -> int:
    return int(conn.execute(dialect.sql("DELETE FROM alert_log WHERE sent_at < ?"), (before,)).rowcount or 0)
