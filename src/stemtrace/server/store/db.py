"""Database connections for the two supported engines, behind one small ``Dialect``.

The SQL in this package is written once, with ``?`` placeholders and ``{float}``-style
type slots; the dialect turns it into what SQLite or PostgreSQL expects (``sqlite.py``,
``postgres.py``). Connections
come from a tiny pool so the API's threadpool and the ingest thread never share one.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from stemtrace.server.store.base import StoreError


class Dialect:
    """What differs between the engines: connecting, placeholders, a few types and functions."""

    name = "base"
    types: dict[str, str] = {}
    like = "LIKE"

    # Whether one connection should do all the writing (and keep a large page cache), the
    # pool's connections only reading.
    single_writer = False

    def connect(self, *, writer: bool = False) -> Any:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        return text.format(**self.types)

    def bucket(self, column: str) -> str:
        raise NotImplementedError

    def begin_write(self, conn: Any) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise :class:`StoreError` when the store is no longer the one opened (SQLite: its
        file was removed or replaced). Called before every write and by ``ping``."""

    def alive(self, conn: Any) -> bool:
        """False for an idle connection the database has ended (checked as it leaves the pool)."""
        return True

    def verify(self, conn: Any) -> None:
        """Like :meth:`check`, through a connection, for ``ping`` only (PostgreSQL: the schema
        dropped or renamed, a privilege revoked)."""

    def describe(self) -> str:
        raise NotImplementedError

    def has_table(self, conn: Any, name: str) -> bool:
        raise NotImplementedError

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
        """``{head} VALUES (?, ..., ?{constants}) {tail}`` for every row; returns the rows changed.

        ``head`` is ``INSERT INTO table (columns)``, ``types`` the PostgreSQL type of each
        bound column and ``constants`` SQL for trailing columns every row shares (``, 1``).
        """
        if not rows:
            return 0
        cur = conn.cursor()
        cur.executemany(self.sql(f"{head} VALUES ({','.join('?' * len(types))}{constants}) {tail}"), rows)
        return max(int(cur.rowcount), 0)


def dialect_for(url: str) -> Dialect:
    from stemtrace.server.store.postgres import PostgresDialect
    from stemtrace.server.store.sqlite import SqliteDialect

    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return SqliteDialect(url)
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        return PostgresDialect(url.replace("postgresql+psycopg", "postgresql", 1))
    raise StoreError(f"unsupported store URL scheme {scheme!r}; use sqlite:///PATH or postgresql://…")


class Pool:
    """At most ``size`` connections, each used by one thread at a time."""

    def __init__(self, dialect: Dialect, size: int = 8, *, writer: bool = False) -> None:
        self.dialect = dialect
        self.writer = writer
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._sem = threading.BoundedSemaphore(size)
        self._all: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._sem.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = None
            if conn is not None and not self.dialect.alive(conn):
                close_quietly(conn)  # the database ended it while idle: a new one, not an error
                with self._lock:
                    self._all.remove(conn)
                conn = None
            if conn is None:
                conn = self.dialect.connect(writer=self.writer)
                with self._lock:
                    self._all.append(conn)
            broken = False
            try:
                yield conn
            except BaseException:
                broken = _rollback(conn)
                raise
            finally:
                if broken:
                    close_quietly(conn)
                    with self._lock:
                        self._all.remove(conn)
                else:
                    self._idle.put(conn)
        finally:
            self._sem.release()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            close_quietly(conn)


def _rollback(conn: Any) -> bool:
    """Roll back after an error; True when the connection itself is unusable."""
    try:
        if isinstance(conn, sqlite3.Connection):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        if conn.closed or conn.broken:
            return True
        if conn.info.transaction_status != 0:  # not IDLE: inside or failed transaction
            conn.execute("ROLLBACK")
        return False
    except Exception:
        return True


def close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


def rows(conn: Any, dialect: Dialect, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cur = conn.execute(dialect.sql(text), tuple(params))
    return list(cur.fetchall())
