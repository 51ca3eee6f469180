"""Live change feed for ``/api/stream``: one store poller per server, many SSE clients.

Changes are read back from the store (``ingested_at``), not taken from this process's
ingest, so a read-only replica streams what another replica writes. The store is read only
while a stream is open: with no browser on a live page there is nobody to tell, and during a
backlog each read took up to 5,000 task ids twice a second from the process serving the API.
Each client receives coalesced messages at most every ``interval`` seconds, filtered to what
its page shows.

A stream never holds the server up: SIGTERM or SIGINT (:func:`close_streams_on_signals`)
and the app's shutdown end every stream within one ``interval``, with a final ``closing``
event, so the server exits at once and each browser's ``EventSource`` reconnects (after
the ``retry`` hint) to whichever server comes back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from stemtrace.server.store import Changes, Store

logger = logging.getLogger("stemtrace.server.live")

HEARTBEAT_S = 15.0
RETRY_MS = 2000
CLOSING = "event: closing\ndata: {}\n\n"
TOPICS = frozenset({"tasks", "workflows", "workers"})
# The change sets kept for clients to catch up from hold at most this many ids in all. A batch
# of a backlog names up to 5,000 tasks; 512 such sets kept ~2.5 million id strings alive
# (hundreds of MB while catching up). Streams read every 0.25 s, so seconds of changes suffice.
KEEP_IDS = 50_000


class Hub:
    """Keeps the last few hundred change sets, numbered, for clients to catch up from."""

    def __init__(self, store: Store, poll_s: float = 0.5, keep: int = 512) -> None:
        self.store = store
        self.poll_s = poll_s
        self._log: deque[tuple[int, Changes]] = deque(maxlen=keep)
        self._ids = 0  # ids held by the sets in ``_log``
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.closing = threading.Event()  # set: every stream ends at its next tick
        self._thread: threading.Thread | None = None
        self._since = time.time()
        self._streams = 0  # open streams: the store is polled only while there is one
        self.polls = 0  # store reads done (for tests and benchmarks)

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, changes: Changes) -> None:
        if changes:
            size = _size(changes)
            with self._lock:
                self._seq += 1
                if len(self._log) == self._log.maxlen:
                    self._ids -= _size(self._log[0][1])
                self._log.append((self._seq, changes))
                self._ids += size
                while self._ids > KEEP_IDS and len(self._log) > 1:
                    self._ids -= _size(self._log.popleft()[1])

    @property
    def streams(self) -> int:
        return self._streams

    def opened(self) -> None:
        with self._lock:
            self._streams += 1

    def closed(self) -> None:
        with self._lock:
            self._streams -= 1

    def since(self, seq: int) -> tuple[int, list[Changes]]:
        with self._lock:
            return self._seq, [c for s, c in self._log if s > seq]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stemtrace-live", daemon=True)
        self._thread.start()

    def close_streams(self) -> None:
        """End every open stream (the server is going away); safe from a signal handler."""
        self.closing.set()

    def stop(self) -> None:
        self.closing.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if not self._streams:
                # Nobody listening: the next stream hears of what changes from about now on.
                self._since = max(self._since, time.time() - self.poll_s)
                continue
            self.polls += 1
            try:
                changes, self._since = self.store.changes_since(self._since)
            except Exception as exc:  # the store being down shows in /api/health
                logger.debug("live poll failed: %s", type(exc).__name__)
                continue
            self.publish(changes)


def _size(changes: Changes) -> int:
    return len(changes.tasks) + len(changes.workflows) + len(changes.workers)


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


async def sse_messages(hub: Hub, flt: StreamFilter, interval: float = 0.25) -> AsyncGenerator[str, None]:
    """Server-Sent Events text: a ``retry`` hint, then coalesced changes and heartbeats, until
    the hub closes its streams; then a ``closing`` event and the end of the response."""
    yield f"retry: {RETRY_MS}\n\n"
    seq = hub.seq
    last_sent = time.monotonic()
    hub.opened()
    try:
        while not hub.closing.is_set():
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
    finally:
        hub.closed()
    yield CLOSING


_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any] | int | None


def close_streams_on_signals(hub: Hub) -> Callable[[], None]:
    """Make SIGTERM and SIGINT end the hub's streams first, then do what they did before.

    uvicorn waits for open responses to finish before it shuts the app down, and an SSE
    response never finishes by itself, so without this a stop waits for its graceful-shutdown
    timeout (forever by default). The server's own handler (uvicorn's, installed before the
    app starts) still runs. Returns the function that puts the previous handlers back; a
    no-op outside the main thread, where signals cannot be handled.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Handler] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        hub.close_streams()
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before in (signal.SIG_DFL, None):  # no Python handler before: the default (exit)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in _EXIT_SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return restore
