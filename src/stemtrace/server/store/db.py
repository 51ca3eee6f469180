"""Database connections for the two supported engines, behind one small ``Dialect``.

The SQL in this package is written once, with ``?`` placeholders and ``{float}``-style
type slots; the dialect turns it into what SQLite or PostgreSQL expects. Connections
come from a tiny pool so the API's threadpool and the ingest thread never share one.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from stemtrace.server.store.base import StoreError

logger = logging.getLogger("stemtrace.server.store")


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


WRITER_CACHE_KIB = 32768
READER_CACHE_KIB = 4096


def statement_sizes(count: int, most: int) -> list[int]:
    """The rows each multi-row ``INSERT`` of ``count`` rows takes: as many of the largest power
    of two up to ``most`` as fit, then the rest as powers of two.

    Python's ``sqlite3`` keeps each connection's last 128 distinct statements prepared, and a
    prepared multi-row statement holds memory in proportion to its placeholders. With one
    statement per batch and table, every batch size was a new text: 100,000 events left
    ~130 MB of prepared inserts behind, twice the page cache. Powers of two make one text per
    power of two at most (nine below 512 rows), and sizes that recur keep their prepared
    statement.
    """
    top = 1
    while top * 2 <= most:
        top *= 2
    sizes = [top] * (count // top)
    rest = count % top
    bit = top
    while rest:
        bit //= 2
        if rest >= bit:
            sizes.append(bit)
            rest -= bit
    return sizes


def _variables(conn: sqlite3.Connection) -> int:
    """How many values one statement may bind (999 before SQLite 3.32, 32766 since)."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        return int(getlimit(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", 9)))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class SqliteDialect(Dialect):
    name = "sqlite"
    types = {"float": "REAL", "text_c": "TEXT", "bigint": "INTEGER", "bool": "INTEGER"}

    def __init__(self, url: str) -> None:
        path = url.split("sqlite://", 1)[1]
        self.path = path[1:] if path.startswith("/") else path
        if not self.path:
            raise StoreError("sqlite store URL needs a path: sqlite:///path/to/stemtrace.db")
        # (st_dev, st_ino) of the file this server opened first. A file removed under a running
        # server stays writable through the open connections, into an inode nobody will ever
        # see again; a new connection would create an empty database. Both are refused.
        self._identity: tuple[int, int] | None = None

    single_writer = True  # SQLite runs one write transaction at a time anyway

    def check(self) -> None:
        if self._identity is None or self.path == ":memory:":
            return
        path = Path(self.path).expanduser()
        try:
            st = os.stat(path)
        except OSError as exc:
            raise StoreError(
                f"the SQLite store {path} is gone ({type(exc).__name__}): its file or directory was removed "
                "while the server ran; ingest is paused and acknowledges nothing. Put the file back, "
                "or restart the server to start a new store there"
            ) from exc
        if (st.st_dev, st.st_ino) != self._identity:
            raise StoreError(
                f"the SQLite store {path} was replaced by another file while the server ran; ingest is "
                "paused and acknowledges nothing. Restart the server to use the new file"
            )

    def connect(self, *, writer: bool = False) -> sqlite3.Connection:
        path = Path(self.path).expanduser()
        try:
            if self._identity is not None:  # opened before: never create it anew
                self.check()
                target, uri = f"file:{quote(str(path))}?mode=rw", True
            else:
                _announce_new(path)
                target, uri = str(path), False
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=30, uri=uri)
            # 16 KiB pages for a new database (a no-op on an existing one, which keeps its own):
            # every batch inserts random task ids into several indexes, so a commit writes
            # hundreds of scattered pages to the WAL, and per page, not per byte, is what it
            # costs: SQLite's share of a batch drops ~25%, ingest gains 10-12% over 4 KiB;
            # list queries pay ~0.25 ms (see docs/benchmarks-server.md, "Ingest").
            conn.execute("PRAGMA page_size=16384")
            # Like page_size, only a new file takes it: retention then gives deleted pages back
            # to the file system (``store/retention.py``, ``PRAGMA incremental_vacuum``).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            # WAL lets the API read while ingest writes; NORMAL sync is durable across app crashes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            # The page cache is per connection. Ingest keeps the index pages it rewrites every
            # batch in the writer's; a reader needs far less, and up to eight of them may be
            # open (the server's RSS counts every one; docs/benchmarks-server.md).
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB if writer else READER_CACHE_KIB}")
            # Checkpoint every 8,192 WAL pages instead of SQLite's 1,000: a page that ingest
            # rewrites in many batches (a hot index page) is copied back once per checkpoint,
            # not once every other batch. Ingest +13% (docs/benchmarks-server.md); the WAL peaks at ~145 MB.
            conn.execute("PRAGMA wal_autocheckpoint=8192")
            if self._identity is None and self.path != ":memory:":
                st = os.stat(path)
                self._identity = (st.st_dev, st.st_ino)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open SQLite store {self.path}: {exc}; check the path is writable"
            ) from exc
        return conn

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
        """Multi-row ``VALUES`` statements of ``statement_sizes`` rows, each within the
        bound-variable limit (``_variables(conn)``).

        ``executemany`` steps once per row and releases the GIL for each step: on the commit
        thread, beside a busy ingest thread, taking it back costs up to a switch interval
        every row. A multi-row statement takes it back once.
        """
        if not rows:
            return 0
        width = len(types)
        group = f"({','.join('?' * width)}{constants})"
        changed = 0
        start = 0
        for count in statement_sizes(len(rows), max(1, _variables(conn) // width)):
            part = rows[start : start + count]
            start += count
            values = [value for row in part for value in row]
            cur = conn.execute(f"{head} VALUES {','.join([group] * count)} {tail}", values)
            changed += max(int(cur.rowcount), 0)
        return changed

    def bucket(self, column: str) -> str:
        return f"CAST({column} / ? AS INTEGER)"

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    def has_table(self, conn: Any, name: str) -> bool:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None


def _announce_new(path: Path) -> None:
    """Say loudly that a new, empty database starts at ``path``; refuse to create its directory.

    After a restart, a data directory that vanished must not turn silently into an empty store,
    so only stemtrace's own default directory (the user data dir) is ever created here: any
    other must exist, as PostgreSQL's data directory must.
    """
    if str(path) == ":memory:" or path.exists():
        return
    parent = path.parent
    if not parent.exists():
        if parent.resolve() != _default_dir():
            raise StoreError(
                f"the SQLite store's directory {parent} does not exist: create it, or point --store at "
                "the right path (stemtrace never creates a store's directory, so a data directory that "
                "vanished is never replaced by an empty store)"
            )
        parent.mkdir(parents=True, exist_ok=True)
        logger.warning("created %s for a new, empty SQLite store (expected on a first start only)", parent)
    else:
        logger.warning("no SQLite store at %s: starting a new, empty one (expected on a first start)", path)


def _default_dir() -> Path:
    """The directory of the default store (``settings.default_store_url``)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("stemtrace")).resolve()


class PostgresDialect(Dialect):
    name = "postgresql"
    types = {"float": "DOUBLE PRECISION", "text_c": 'TEXT COLLATE "C"', "bigint": "BIGINT", "bool": "BOOLEAN"}
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
            _close(conn)
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


def dialect_for(url: str) -> Dialect:
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
                _close(conn)  # the database ended it while idle: a new one, not an error
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
                    _close(conn)
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
            _close(conn)


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


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


def rows(conn: Any, dialect: Dialect, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cur = conn.execute(dialect.sql(text), tuple(params))
    return list(cur.fetchall())
