"""Which errors out of the store mean "the store cannot answer now" rather than a bug.

The API answers the first kind 503 with ``Retry-After`` (a locked or vanished SQLite file, a
PostgreSQL server refusing connections, a schema renamed away: the operator's problem, and
the request may well succeed later) and the second 500 (stemtrace's problem: a query the
database rejects as written). Ingest has its own, different question (``quarantine.is_data_error``:
is an event to blame?); this one is asked of a read.

The drivers' own classes are too coarse to decide: SQLite's ``OperationalError`` covers both
"database is locked" and "no such column", so SQLite errors are told apart by their message
(SQLite's result codes are not exposed by ``sqlite3`` before Python 3.11), PostgreSQL's by
SQLSTATE class.
"""

from __future__ import annotations

import sqlite3

from stemtrace.server.store.base import StoreError

# SQLite messages of a store that cannot be used now: busy, gone, full, read-only, damaged,
# its tables removed under the server, its connection closed at shutdown.
_SQLITE_UNAVAILABLE = (
    "locked",
    "busy",
    "disk i/o",
    "unable to open",
    "disk is full",
    "readonly",
    "no such table",
    "not a database",
    "malformed",
    "closed database",
    "interrupted",
)

# SQLSTATE classes: 08 connection exception, 40 transaction rollback (deadlock, serialization),
# 53 insufficient resources, 55 object not in prerequisite state (lock not available),
# 57 operator intervention (shutdown, statement timeout), 58 system error, 3F invalid schema.
_PG_UNAVAILABLE_CLASSES = ("08", "40", "53", "55", "57", "58", "3F")
# 42P01: a table gone (the schema renamed or dropped under the server); 42501: a privilege revoked.
_PG_UNAVAILABLE_CODES = ("42P01", "42501")


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot answer now (worth a retry), False for a bug."""
    if isinstance(exc, StoreError):
        return True
    if isinstance(exc, sqlite3.Error):
        # IntegrityError, DataError and the like are about a value, never the store's state.
        fault = (sqlite3.OperationalError, sqlite3.ProgrammingError)
        if not isinstance(exc, fault) and type(exc) is not sqlite3.DatabaseError:
            return False
        text = str(exc).lower()
        return any(marker in text for marker in _SQLITE_UNAVAILABLE)
    if type(exc).__module__.split(".", 1)[0] == "psycopg":
        return _psycopg_unavailable(exc)
    return False


def _psycopg_unavailable(exc: BaseException) -> bool:
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        # Raised by the client itself: the connection is closed or broken, a timeout.
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return state[:2] in _PG_UNAVAILABLE_CLASSES or state in _PG_UNAVAILABLE_CODES
