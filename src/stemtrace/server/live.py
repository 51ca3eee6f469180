"""Live change feed for ``/api/stream``: one store poller per server, many SSE clients.

Changes are read back from the store (``ingested_at``), not taken from this process's
ingest, so a read-only replica streams what another replica writes. Each client
receives coalesced messages at most every ``interval`` seconds, filtered to what
its page shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from stemtrace.server.store import Changes, Store

logger = logging.getLogger("stemtrace.server.live")

HEARTBEAT_S = 15.0
TOPICS = frozenset({"tasks", "workflows", "workers"})


class Hub:
    """Keeps the last few hundred change sets, numbered, for clients to catch up from."""

    def __init__(self, store: Store, poll_s: float = 0.5, keep: int = 512) -> None:
        self.store = store
        self.poll_s = poll_s
        self._log: deque[tuple[int, Changes]] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = time.time()

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, changes: Changes) -> None:
        if changes:
            with self._lock:
                self._seq += 1
                self._log.append((self._seq, changes))

    def since(self, seq: int) -> tuple[int, list[Changes]]:
        with self._lock:
            return self._seq, [c for s, c in self._log if s > seq]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stemtrace-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                changes, self._since = self.store.changes_since(self._since)
            except Exception as exc:  # the store being down shows in /api/health
                logger.debug("live poll failed: %s", type(exc).__name__)
                continue
            self.publish(changes)


@dataclass(frozen=True, slots=True)
class StreamFilter:
    topics: frozenset[str] = TOPICS
    workflow: str | None = None
    task: str | None = None

    def apply(self, batch: list[Changes]) -> dict[str, list[str]]:
        tasks: set[str] = set()
        workflows: set[str] = set()
        workers: set[str] = set()
        for c in batch:
            if "tasks" in self.topics:
                for tid in c.tasks:
                    if self.task is not None and tid != self.task:
                        continue
                    if self.workflow is not None and c.task_workflows.get(tid) != self.workflow:
                        continue
                    tasks.add(tid)
            if "workflows" in self.topics:
                workflows |= {w for w in c.workflows if self.workflow is None or w == self.workflow}
            if "workers" in self.topics:
                workers |= set(c.workers)
        if not (tasks or workflows or workers):
            return {}
        return {"tasks": sorted(tasks), "workflows": sorted(workflows), "workers": sorted(workers)}


async def sse_messages(hub: Hub, flt: StreamFilter, interval: float = 0.25) -> AsyncIterator[str]:
    """Server-Sent Events text: a ``retry`` hint, then coalesced changes and heartbeats."""
    yield "retry: 2000\n\n"
    seq = hub.seq
    last_sent = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        seq, batch = hub.since(seq)
        payload = flt.apply(batch)
        now = time.monotonic()
        if payload:
            last_sent = now
            yield f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
        elif now - last_sent >= HEARTBEAT_S:
            last_sent = now
            yield ": heartbeat\n\n"
