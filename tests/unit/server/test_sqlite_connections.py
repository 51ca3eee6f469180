"""A SQLite store writes through one connection with a large page cache; readers keep small ones.

Every connection has its own page cache and its own prepared statements, and the server's RSS
counts them all: with the writer's cache on every pooled connection, a busy API could hold
eight of them.
"""

from __future__ import annotations

import threading
from pathlib import Path

from stemtrace.core.events import Event, Source
from stemtrace.server.store import open_store
from stemtrace.server.store.sqlite import READER_CACHE_KIB, WRITER_CACHE_KIB


def _event(seq: int) -> Event:
    source = Source("h", 1, "i", seq, proc="child", node="w@h")
    return Event("task.started", 1.0 + seq, source, f"t{seq}", "job", {})


def test_writes_use_the_writer_connection_and_reads_the_small_cached_pool(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        writers: set[int] = set()
        for seq in range(1, 4):
            store.apply_begin([_event(seq)], {}, 10.0).result()
            with store.writers.connection() as conn:
                writers.add(id(conn))
                assert conn.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)
        assert len(writers) == 1
        # Readers busy on other threads still get connections of their own, with the small cache.
        held = threading.Barrier(3)
        sizes: list[tuple[int, ...]] = []

        def read() -> None:
            with store.pool.connection() as conn:
                sizes.append(conn.execute("PRAGMA cache_size").fetchone())
                held.wait(5)

        threads = [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        held.wait(5)
        for t in threads:
            t.join()
        assert sizes == [(-READER_CACHE_KIB,)] * 2
        assert store.get_task("t2") is not None
    finally:
        store.close()
