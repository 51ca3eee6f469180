"""SQLite: one file, one writer connection with a large page cache, readers beside it (WAL)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stemtrace.server.store.base import StoreError
from stemtrace.server.store.db import Dialect

logger = logging.getLogger("stemtrace.server.store")

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
    types = {"float": "REAL", "text_c": "TEXT", "bigint": "INTEGER", "bool": "INTEGER", "blob": "BLOB"}

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
