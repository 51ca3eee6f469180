"""PostgreSQL: connections through psycopg (imported only when a PostgreSQL store is opened)."""

from __future__ import annotations

import logging
import select
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stemtrace.server.store.base import StoreError
from stemtrace.server.store.db import Dialect, close_quietly

logger = logging.getLogger("stemtrace.server.store")


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {
        "float": "DOUBLE PRECISION",
        "text_c": 'TEXT COLLATE "C"',
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "blob": "BYTEA",
    }
    like = "ILIKE"
    # One lock key for every writer of a store: replicas serialise their batches, so folding a
    # task always sees the events another replica committed first. The key includes the schema
    # (``lock_key``): stores in other schemas of the same database do not wait for this one's
    # writes (with one key for all, a busy store slowed every other to its pace).
    LOCK_KEY = 0x57E37ACE

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
        params = dict(parse_qsl(parts.query))
        self.schema = params.pop("schema", None)
        self.dsn = urlunsplit(parts._replace(query=urlencode(params)))
        self.url = url
        self.lock_key = (self.LOCK_KEY << 32) | zlib.crc32((self.schema or "public").encode())
        # Set once the first connection found (or made) the schema: from then on a missing
        # schema is a fault, never a reason to create an empty one (the SQLite file's identity
        # plays the same part in ``SqliteDialect``).
        self._opened = False

    def connect(self, *, writer: bool = False) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            from stemtrace.transport import mask_url

            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to PostgreSQL store {mask_url(self.url)}: {first}; "
                "check the server is running and the URL, user and database are right"
            ) from exc
        try:
            if self.schema:
                found = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if found is None and self._opened:
                    raise StoreError(self._gone())
                if found is None:  # creating needs the CREATE privilege; an existing schema does not
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                conn.execute(f'SET search_path TO "{self.schema}"')
            self._opened = True
        except BaseException as exc:
            close_quietly(conn)
            if isinstance(exc, psycopg.Error):
                raise StoreError(f"PostgreSQL store {self.describe()}: {type(exc).__name__}: {exc}") from exc
            raise
        return conn

    def alive(self, conn: Any) -> bool:
        """An idle connection has nothing to read unless the server ended it (a terminated
        backend sends its error and closes; we never LISTEN). One ``select`` with no wait is
        cheaper than a ``SELECT 1`` round trip, and spares the next API request a 5xx after
        ``pg_terminate_backend``, a PostgreSQL restart or an idle timeout."""
        if conn.closed or conn.broken:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def verify(self, conn: Any) -> None:
        """Raise :class:`StoreError` when the schema or its tables are gone, or this user may no
        longer use them: ``SELECT 1`` succeeds in all three cases, ingest's writes do not."""
        schema = self.schema or "public"
        row = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if row is None:
            raise StoreError(self._gone())
        usage, tables = conn.execute(
            "SELECT has_schema_privilege(%s, 'USAGE'), "
            "(SELECT has_table_privilege(c.oid, 'SELECT,INSERT,UPDATE,DELETE') FROM pg_class c "
            " WHERE c.relnamespace = %s AND c.relname = 'tasks')",
            (row[0], row[0]),
        ).fetchone()
        if not usage or not tables:
            what = "USAGE on the schema" if not usage else "its tables (or they are gone)"
            raise StoreError(
                f"PostgreSQL store {self.describe()}: permission denied: this user may not use {what}; "
                "ingest is paused and acknowledges nothing until the privilege is granted back"
            )

    def _gone(self) -> str:
        return (
            f"the PostgreSQL schema {self.schema!r} of store {self.describe()} is gone: dropped or renamed "
            "while the server ran; ingest is paused and acknowledges nothing. Put it back, or restart "
            "the server to start a new store there"
        )

    def sql(self, text: str) -> str:
        return super().sql(text).replace("?", "%s")

    def bucket(self, column: str) -> str:
        return f"CAST(floor({column} / ?) AS BIGINT)"

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))

    def insert_rows(
        self,
        conn: Any,
        head: str,
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        tail: str = "",
        constants: str = "",
    ) -> int:
        """One statement per batch: each column travels as one binary array and ``unnest``
        turns the arrays back into rows. ``executemany`` adapts and runs a statement per
        row: ~10x this client CPU for a batch of events (and psycopg's *text* array format
        escapes item by item in Python, slower still, hence ``%b``)."""
        if not rows:
            return 0
        columns = _columns(rows, types)
        if columns is None:  # a column mixing Python types: arrays cannot carry it
            return super().insert_rows(conn, head, types, rows, tail=tail, constants=constants)
        arrays = ", ".join(f"%b::{t}[]" for t in types)
        cur = conn.execute(f"{head} SELECT *{constants} FROM unnest({arrays}) {tail}", columns)
        return max(int(cur.rowcount), 0)

    def describe(self) -> str:
        from stemtrace.transport import mask_url

        return mask_url(self.url)

    def has_table(self, conn: Any, name: str) -> bool:
        """Whether ``name`` is a table on the search path (the store's ``?schema=``, if given)."""
        return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0])


_FLOAT_TYPES = frozenset({"float8", "double precision"})


def _columns(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> list[list[Any]] | None:
    """The rows as one list per column, or ``None`` when a column holds more than one Python
    type (a list parameter must be homogeneous). Integers in a float column become floats,
    the conversion PostgreSQL would apply to each row's parameter anyway."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    if len(columns) != len(types):
        raise ValueError(f"{len(types)} column types for rows of {len(columns)} values")
    for i, (column, pg_type) in enumerate(zip(columns, types, strict=True)):
        kinds = {type(v) for v in column}
        kinds.discard(type(None))
        if len(kinds) <= 1:
            continue
        if pg_type in _FLOAT_TYPES and kinds <= {int, float}:
            columns[i] = [float(v) if type(v) is int else v for v in column]
            continue
        return None
    return columns
