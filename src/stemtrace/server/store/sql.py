"""``SqlStore``: the one :class:`Store` implementation, on SQLite or PostgreSQL.

The engines differ only in the :class:`~stemtrace.server.store.db.Dialect`; the SQL,
and therefore the behaviour, is shared. The contract suite runs on both to keep it so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from stemtrace.core.events import Event
from stemtrace.core.model import GraphRecord, TaskRecord, WorkflowGraph
from stemtrace.server.store import (
    alert_log,
    beat,
    never_sent,
    offline,
    rollups_schema,
    schema,
    seen,
    side_tables,
)
from stemtrace.server.store import retention as retention_sql
from stemtrace.server.store.aggregates import AggregateReads
from stemtrace.server.store.base import (
    ApplyResult,
    Changes,
    Page,
    PendingApply,
    Store,
    StoreError,
    TaskDetail,
    TaskQuery,
    WorkflowQuery,
    WorkflowRow,
)
from stemtrace.server.store.db import Pool, dialect_for
from stemtrace.server.store.fanout import collapsed_graph_of
from stemtrace.server.store.read import Reader
from stemtrace.server.store.write import BatchWriter, Plan, Staged, plan_batch

_T = TypeVar("_T")


class _Committing(PendingApply):
    """A staged batch whose inserts and ``COMMIT`` run on the store's commit thread.

    ``result()`` waits for them. Until then the ingest thread polls, decodes and plans
    the next batch: both engines release the GIL while they insert and commit.
    """

    def __init__(self, done: Future[int], changes: Changes) -> None:
        super().__init__(ApplyResult(changes=changes))
        self._done = done

    def result(self) -> ApplyResult:
        return ApplyResult(stored=self._done.result(), changes=super().result().changes)


def _write_and_commit(lease: Any, conn: Any, staged: Staged) -> int:
    try:
        stored = staged.write()
        conn.execute("COMMIT")
    except BaseException as exc:
        lease.__exit__(type(exc), exc, exc.__traceback__)  # rolls back, returns or drops conn
        raise
    lease.__exit__(None, None, None)
    return stored


class SqlStore(AggregateReads, Store):
    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self.dialect = dialect_for(url)
        self.pool = Pool(self.dialect, pool_size)
        # Writes take their connection from here: on SQLite one long-lived connection of its
        # own, with the large page cache ingest needs; elsewhere the shared pool.
        self.writers = Pool(self.dialect, 1, writer=True) if self.dialect.single_writer else self.pool
        # One long-lived thread: starting one per batch cost ~3 ms of the ingest thread's time.
        self._committer: ThreadPoolExecutor | None = None
        self._committer_lock = threading.Lock()
        self._store_id: str | None = None

    @property
    def description(self) -> str:
        """The URL with any password masked."""
        return self.dialect.describe()

    @contextmanager
    def _read(self) -> Iterator[Reader]:
        """A reader on a pooled connection, returned to the pool when the block ends."""
        with self.pool.connection() as conn:
            yield Reader(conn, self.dialect)

    def _write(self, fn: Callable[[Any], _T]) -> _T:
        """``fn(conn)`` in one write transaction on a writer connection, committed unless it raises."""
        self.dialect.check()
        with self.writers.connection() as conn:
            self.dialect.begin_write(conn)
            try:
                out = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return out

    # -- lifecycle ----------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self.writers.connection() as conn:
            return schema.migrate(conn, self.dialect)

    def ping(self) -> None:
        try:
            self.dialect.check()
            with self.pool.connection() as conn:
                conn.execute("SELECT 1").fetchall()
                self.dialect.verify(conn)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"store {self.description} is unreachable: {type(exc).__name__}") from exc

    def close(self) -> None:
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown(wait=True)
        self.pool.close()
        if self.writers is not self.pool:
            self.writers.close()

    def _commit_thread(self) -> ThreadPoolExecutor:
        with self._committer_lock:
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="stemtrace-commit")
            return self._committer

    # -- writes ---------------------------------------------------------------------------------------

    def apply(
        self, events: Sequence[Event], malformed: Mapping[str, int], now: float, source: str = ""
    ) -> ApplyResult:
        return self._write(lambda conn: BatchWriter(conn, self.dialect, now, source).apply(events, malformed))

    def prepare(self, events: Sequence[Event]) -> Plan:
        return plan_batch(events)

    def apply_begin(
        self,
        events: Sequence[Event],
        malformed: Mapping[str, int],
        now: float,
        prepared: object = None,
        source: str = "",
    ) -> PendingApply:
        """The reads run here; the bulk inserts and ``COMMIT`` run on a thread of their own.

        Both engines release the GIL while they insert and commit (SQLite in one multi-row
        statement per table, PostgreSQL waiting on the server), so the ingest thread
        meanwhile polls, decodes and plans the next batch. See docs/benchmarks-server.md,
        "Ingest".
        """
        plan = prepared if isinstance(prepared, Plan) else plan_batch(events)
        self.dialect.check()
        lease = self.writers.connection()
        conn = lease.__enter__()
        try:
            self.dialect.begin_write(conn)
            staged = BatchWriter(conn, self.dialect, now, source).stage(plan, malformed)
        except BaseException as exc:
            lease.__exit__(type(exc), exc, exc.__traceback__)  # rolls back, returns or drops conn
            raise
        try:
            done = self._commit_thread().submit(_write_and_commit, lease, conn, staged)
        except BaseException as exc:  # the store is closing
            lease.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return _Committing(done, staged.changes)

    def mark_lost(self, now: float, offline_after: float) -> int:
        return self._write(
            lambda conn: offline.mark_lost(BatchWriter(conn, self.dialect, now), offline_after)
        )

    def settle_never_sent(
        self, now: float, quiet_for: float, after: tuple[float, str] = never_sent.START
    ) -> tuple[int, tuple[float, str], bool]:
        """One transaction of ``store/never_sent.py``: planned steps of quiet workflows."""
        return self._write(
            lambda conn: never_sent.settle(BatchWriter(conn, self.dialect, now), quiet_for, after)
        )

    def expire(self, now: float, retention: float, failure_retention: float, batch: int = 500) -> int:
        """One transaction of retention (see ``store/retention.py``); returns the workflows deleted."""

        def run(conn: Any) -> int:
            ids = retention_sql.expired_workflows(
                conn, self.dialect, now, retention=retention, failure_retention=failure_retention, batch=batch
            )
            retention_sql.delete_workflows(conn, self.dialect, ids)
            rollups_schema.expire(conn, self.dialect, now, retention, failure_retention)
            return len(ids)

        return self._write(run)

    def expire_side_tables(self, now: float, retention: float) -> int:
        return self._write(lambda conn: retention_sql.expire_side_tables(conn, self.dialect, now, retention))

    def evict(self, max_tasks: int, batch: int = 500) -> int:
        def run(conn: Any) -> int:
            ids = retention_sql.eviction_candidates(conn, self.dialect, max_tasks, batch)
            retention_sql.delete_workflows(conn, self.dialect, ids)
            return len(ids)

        return self._write(run)

    def reclaim(self) -> int:
        """SQLite: free pages back to the file system and the WAL truncated. PostgreSQL: the
        tables with many dead rows vacuumed (their space reusable), in case autovacuum is off;
        it returns 0 so that maintenance does it once per round."""
        with self.writers.connection() as conn:
            if self.dialect.name == "sqlite":
                return retention_sql.sqlite_reclaim(conn)
            retention_sql.postgres_reclaim(conn, self.dialect)
            return 0

    def store_id(self) -> str:
        """The store's identity, made once and kept in ``store_meta``: replicas of one store
        share it, so they share one subscription on the broker; another store has its own."""
        if self._store_id is None:
            self._store_id = self._write(lambda conn: side_tables.store_id(conn, self.dialect, time.time()))
        return self._store_id

    def record_quarantine(self, entries: Sequence[Any], now: float) -> None:
        rows = side_tables.quarantine_rows(entries, now)
        if rows:
            self._write(
                lambda conn: side_tables.record_quarantine(BatchWriter(conn, self.dialect, now), rows)
            )

    def quarantine(self) -> list[dict[str, Any]]:
        with self._read() as r:
            return side_tables.quarantine(r.q)

    # -- reads ------------------------------------------------------------------------------------------

    def list_tasks(self, query: TaskQuery) -> Page:
        with self._read() as r:
            if query.beat is not None and query.source is None:
                # The beat index is (beat_entry, source, sort_ts): naming the entry's one source
                # (the common case) makes the page an index range instead of a sort of its runs.
                found = beat.entry_sources(r, query.beat)
                if len(found) == 1:
                    query = replace(query, source=found[0])
            return r.list_tasks(query)

    def get_task(self, task_id: str) -> TaskDetail | None:
        with self._read() as r:
            return r.get_task(task_id)

    def resolve_workflow(self, any_id: str) -> str | None:
        with self._read() as r:
            return r.resolve_workflow(any_id)

    def workflow_records(self, workflow_id: str) -> list[TaskRecord]:
        with self._read() as r:
            return r.workflow_records(workflow_id)

    def workflow_skeletons(self, workflow_id: str) -> list[GraphRecord]:
        with self._read() as r:
            return r.workflow_skeletons(workflow_id)

    def collapsed_graph(self, row: WorkflowRow) -> WorkflowGraph | None:
        with self._read() as r:
            return collapsed_graph_of(r, row)

    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        with self._read() as r:
            return r.get_workflow(workflow_id)

    def list_workflows(self, query: WorkflowQuery) -> Page:
        with self._read() as r:
            return r.list_workflows(query)

    def changes_since(self, after: float) -> tuple[Changes, float]:
        with self._read() as r:
            return r.changes_since(after)

    def counters(self, *, library: bool = True) -> dict[str, Any]:
        with self._read() as r:
            return side_tables.counters(r, library=library)

    def library_reports(self) -> list[dict[str, Any]]:
        with self._read() as r:
            return side_tables.library_reports(r)

    # -- sequence ranges and losses (``store/seen.py``, ``server/losses.py``) ----------------------

    def record_seen(self, rows: Sequence[seen.SeenRow]) -> None:
        if rows:
            self._write(lambda conn: seen.record(BatchWriter(conn, self.dialect, 0.0), rows))

    def settle_losses(self, now: float, grace: float, forget_before: float | None = None) -> int:
        def run(conn: Any) -> int:
            w = BatchWriter(conn, self.dialect, now)
            lost = seen.settle(w, now, grace)
            if forget_before is not None:
                seen.expire(w, forget_before)
            return lost

        return self._write(run)

    def loss_report(self, recent_since: float) -> dict[str, Any]:
        with self._read() as r:
            return seen.report(r.q, recent_since)

    def losses_overlapping(self, start: float, end: float, workflow_id: str | None = None) -> int:
        with self._read() as r:
            if workflow_id is None:
                return seen.overlapping(r.q, start, end)
            return seen.overlapping_workflow(r.q, start, end, workflow_id)

    # -- celery beat runs (``store/beat.py``) ----------------------------------------------------

    def beat_entries(self, source: str | None = None) -> list[tuple[str, str]]:
        with self._read() as r:
            return beat.entries(r, source)

    def beat_runs(
        self, entry: str, limit: int, cursor: str | None = None, source: str = ""
    ) -> tuple[list[Any], str | None]:
        with self._read() as r:
            found, nxt = beat.runs(r, entry, source, limit, cursor)
        return list(found), nxt

    def beat_overview(self, since: float, sample: int, recent: int, source: str | None = None) -> list[Any]:
        with self._read() as r:
            return list(beat.overview(r, since, sample, recent, source))

    def beat_sent_times(self, entry: str, limit: int, source: str = "") -> list[float]:
        with self._read() as r:
            return beat.sent_times(r, entry, source, limit)

    def beat_count(self, entry: str, since: float, source: str = "") -> int:
        with self._read() as r:
            return beat.count_since(r, entry, source, since)

    # -- alerts sent (``store/alert_log.py``) ---------------------------------------------------

    def claim_alerts(self, rule: str, keys: Sequence[str], now: float) -> list[str]:
        if not keys:
            return []
        return self._write(lambda conn: alert_log.claim(conn, self.dialect, rule, keys, now))

    def release_alerts(self, keys: Sequence[str]) -> None:
        if keys:
            self._write(lambda conn: alert_log.release(conn, self.dialect, keys))

    def expire_alerts(self, before: float) -> int:
        return self._write(lambda conn: alert_log.expire(conn, self.dialect, before))


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """Open (and by default migrate) the store at ``url``."""
    store = SqlStore(url)
    if migrate:
        try:
            store.migrate()
        except StoreError:
            store.close()
            raise
        except Exception as exc:
            store.close()
            raise StoreError(f"cannot prepare store {store.description}: {exc}") from exc
    return store
