"""The per-process emitter: a bounded buffer and one background publisher thread.

Signal handlers call :meth:`Emitter.emit_task`, which stamps the event, appends
one flat tuple (``message.Entry``) to a deque and returns: no I/O, no lock any I/O holds, so a hung or
unreachable broker never slows ``.delay()`` or a task. The publisher thread
(a greenlet under gevent's monkey-patching) wakes every flush interval, has
``message.MessageBuilder`` build and finish the events (captured values are serialized
and redacted there, off the hot path) into batches (the commonest task events as rows),
and sends
through its *own* transport connection, created lazily in the thread: one round
trip per interval for a steady stream.

A broker that goes away loses nothing until the buffer is full. A failed send keeps its
messages, in order, among the *held* messages (finished and encoded, waiting to be sent);
the thread reconnects after an exponential backoff with jitter (so a restarted broker is
not met by every process at once) and sends them first. While the broker is away each tick
still finishes what the caller buffered into held messages, so the caller's buffer stays
small and what is held is measured in bytes (messages held while backing off are kept
zlib-compressed, about a fifth of their size). Held events are capped by count
(``buffer_size``, together with the caller's buffer) and by bytes (``buffer_bytes``);
beyond either cap the *oldest* held messages are dropped and counted as ``buffer
overflow``, which the ``library.health`` event reports and the server turns into a loss
record. See docs/configuration-library.md for the arithmetic of the defaults.

The emitter belongs to one process: after ``fork`` the child builds a new one
(new ``inst``, sequence, buffer, thread and connection); see ``install``.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any

from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.finish import Finisher
from stemtrace.capture.message import Entry, MessageBuilder
from stemtrace.core.events import LIBRARY_HEALTH
from stemtrace.core.gaps import OVERFLOW  # the drop cause ``library.health`` reports
from stemtrace.transport import Publisher, TransportConfig, mask_url, resolve

logger = logging.getLogger("stemtrace.capture")

PeriodicSource = Callable[[], list[dict[str, Any]]]
FIRST_BACKOFF_S = 0.5
_MESSAGES_PER_SEND = 20


class Emitter:
    """Buffer, identity and publisher thread of one process."""

    def __init__(self, config: CaptureConfig, transport: TransportConfig, finish: Finisher) -> None:
        self.config = config
        self.transport = transport
        self._message = MessageBuilder(finish, self._build_failed)
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.inst = uuid.uuid4().hex
        self.sequence = itertools.count(1)  # the events' ``seq``: gaps show drops
        self.buffer: deque[Entry] = deque()
        self.limit = max(1, config.buffer_size)
        self.byte_limit = max(1, config.buffer_bytes)
        self.max_backoff = max(FIRST_BACKOFF_S, config.retry_backoff_max)
        self.batch = max(1, config.batch_size)  # events per transport message
        # Messages finished and encoded but not yet sent, oldest first: (payload, events,
        # compressed). Only the publisher thread touches it; others read the two totals.
        self.held: deque[tuple[bytes, int, bool]] = deque()
        self.held_events = 0
        self.held_bytes = 0
        self.sent = 0
        self.dropped = 0  # all causes: overflow, and events that could not be built (a bug)
        self.overflow = 0  # dropped because the buffer was full, oldest first
        self.errors = 0
        self.proc = "client"
        self.node: str | None = None
        self.periodic: list[tuple[float, PeriodicSource]] = []
        self._publisher: Publisher | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._inflight = 0  # events taken from the buffer but not yet sent or dropped
        self._flush_waiters = 0  # callers of flush() waiting for the buffer to empty
        self._stopping = False
        self._backoff = 0.0
        # Jitter from a generator of our own: drawing from the global ``random`` in a background
        # thread would change the host application's random sequence (and its seeded tests).
        self._jitter = random.Random()
        self._retry_at = 0.0
        self._outage = False  # a send failed and none succeeded since

    # -- hot path -------------------------------------------------------------
    def emit_task(
        self, etype: str, task_id: Any, name: Any, values: Entry, *, proc: str = "", ts: int | None = None
    ) -> None:
        """Enqueue a task event stamped ``ts`` (epoch nanoseconds; now if not given); see ``Entry``
        for ``values``. The per-task handlers build their entry whole and call :meth:`put`."""
        seq = next(self.sequence)
        stamp = time.time_ns() if ts is None else ts
        self.put((etype, stamp, seq, task_id, name, *values, proc or self.proc, self.node))

    def emit(self, event: dict[str, Any], proc: str | None = None, *, force: bool = False) -> None:
        """Enqueue an event given whole. ``force`` (health reports only) bypasses the limit:
        the report of drops must not make room by dropping another event."""
        self.put((None, 0, next(self.sequence), None, None, event, proc or self.proc, self.node), force)

    def put(self, entry: Entry, force: bool = False) -> None:
        """Enqueue one ``Entry``; when the buffer is full the oldest buffered entry makes room
        and is counted dropped. Its sequence number was taken, so the server sees the gap.

        Only reached when the publisher thread cannot keep up at all (it finishes the buffer
        into held messages every tick, even with the broker away). The thread may be taking
        from the same deque: each ``popleft`` is atomic, and it tolerates finding fewer.
        """
        buffer = self.buffer
        if len(buffer) >= self.limit and not force:
            try:
                buffer.popleft()
            except IndexError:  # the publisher thread took them meanwhile
                pass
            else:
                self.overflow += 1
                self.dropped += 1
        buffer.append(entry)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="stemtrace-publisher", daemon=True)
            self._thread = thread
        thread.start()

    # -- publisher thread -----------------------------------------------------
    def _run(self) -> None:
        due = {i: time.monotonic() + interval for i, (interval, _) in enumerate(self.periodic)}
        while True:
            self._wake.wait(self.config.flush_interval)
            self._wake.clear()
            now = time.monotonic()
            for i, (interval, source) in enumerate(list(self.periodic)):
                if now >= due.get(i, now):
                    due[i] = now + interval
                    self._run_periodic(source)
            try:
                self._drain()
            except Exception:  # a bug here must not end the thread: later events would pile up
                self.errors += 1
                self._inflight = 0
                logger.debug("stemtrace publisher failed", exc_info=True)
            with self._cond:
                self._cond.notify_all()
                if self._stopping and not self.buffer and not self.held:
                    # Later events (an atexit flush after worker_shutdown) start a new thread.
                    self._thread = None
                    self._stopping = False
                    return

    def _run_periodic(self, source: PeriodicSource) -> None:
        try:
            for event in source():
                self.emit(event, force=event.get("type") == LIBRARY_HEALTH)
        except Exception:
            self.errors += 1
            logger.debug("stemtrace periodic event failed", exc_info=True)

    def _drain(self) -> None:
        """Send held messages, then what was buffered when this tick began, and any full message
        that arrived since; while backing off, only finish the buffer into held messages.

        Events that trickle in during a send wait for the next tick unless someone is
        flushing: sending them as they come would cost a round trip for every few events.
        """
        owed = len(self.buffer)
        held = self.held
        while True:
            waiting = time.monotonic() < self._retry_at
            if waiting or not held:
                buffer = self.buffer
                if not buffer:
                    return
                if owed <= 0 and len(buffer) < self.batch and not (self._stopping or self._flush_waiters):
                    return
                batches, popped = self._take()
                self._hold(batches, compress=waiting)
                self._inflight -= popped
                owed -= popped
                continue
            if self._publisher is None:
                try:
                    self._publisher = resolve(self.transport).publisher()
                except Exception as exc:
                    self._failed(exc)
                    if self._stopping:
                        return
                    continue
            chunk = [held[i] for i in range(min(len(held), _MESSAGES_PER_SEND))]
            try:
                self._publisher.send([zlib.decompress(data) if packed else data for data, _, packed in chunk])
            except Exception as exc:  # the messages stay held, in order, for the next attempt
                self._failed(exc)
                if self._stopping:
                    return
                continue
            for data, count, _ in chunk:
                held.popleft()
                self.held_events -= count
                self.held_bytes -= len(data)
                self.sent += count
            self._sent_ok()

    def _hold(self, batches: list[tuple[bytes, int]], *, compress: bool = False) -> None:
        """Append finished messages to the held ones, then drop the oldest held messages while
        the events (held and still buffered) or the held bytes are over their caps.

        ``compress`` (while backing off: the messages will wait) keeps them zlib-compressed,
        at the fastest level: a message of compact rows shrinks about five times.
        """
        held = self.held
        for payload, count in batches:
            data = zlib.compress(payload, 1) if compress else payload
            held.append((data, count, compress))
            # Counted held before ``_inflight`` falls, so ``flush`` always sees them somewhere.
            self.held_events += count
            self.held_bytes += len(data)
        while len(held) > 1 and (
            self.held_events + len(self.buffer) > self.limit or self.held_bytes > self.byte_limit
        ):
            data, count, _ = held.popleft()
            self.held_events -= count
            self.held_bytes -= len(data)
            self.overflow += count
            self.dropped += count

    def _take(self) -> tuple[list[tuple[bytes, int]], int]:
        """Up to ``_MESSAGES_PER_SEND`` messages built from the buffer's oldest entries, each with
        its number of events, and how many entries were taken (``_inflight`` counts them until
        the caller holds the messages)."""
        batches: list[tuple[bytes, int]] = []
        popped = 0
        buffer = self.buffer
        while buffer and len(batches) < _MESSAGES_PER_SEND:
            # Counted as in flight before they leave the buffer, so ``flush`` always sees them in
            # one or the other. A caller making room (``put``) may take some first: the shortfall
            # is given back below.
            take = min(len(buffer), self.batch)
            self._inflight += take
            try:
                proc, node = buffer[0][-2], buffer[0][-1]
            except IndexError:
                self._inflight -= take
                break
            entries: list[Entry] = []
            for _ in range(take):
                try:
                    entries.append(buffer.popleft())
                except IndexError:
                    break
            got = len(entries)
            self._inflight -= take - got
            popped += got
            header = {"host": self.host, "pid": self.pid, "inst": self.inst, "proc": proc, "node": node}
            message = self._message.build(entries, header)
            if message is not None:
                batches.append(message)
        return batches, popped

    def _build_failed(self, exc: Exception, lost: bool) -> None:
        """A bug met building a message (``MessageBuilder``): counted and logged; an entry that
        could not be built at all (``lost``) is counted dropped, any other event still goes out
        without its captured values."""
        self.errors += 1
        if lost:
            self.dropped += 1
            logger.debug("stemtrace could not build an event", exc_info=exc)
        else:
            logger.debug("stemtrace could not finish an event", exc_info=exc)

    def _failed(self, exc: Exception) -> None:
        """A connect or send failed: drop the connection and retry after a backoff.

        The backoff doubles from 0.5 s up to ``retry_backoff_max`` and each wait is drawn
        between half and all of it (jitter), so the processes of a fleet do not all reconnect
        to a restarted broker in the same instant. Nothing held is dropped here.
        """
        self.errors += 1
        if self._publisher is not None:
            try:
                self._publisher.close()
            except Exception:
                pass
            self._publisher = None
        self._backoff = min(self.max_backoff, self._backoff * 2 or FIRST_BACKOFF_S)
        wait = self._backoff * self._jitter.uniform(0.5, 1.0)
        self._retry_at = time.monotonic() + wait
        if not self._outage:  # once per outage: a broker away for an hour must not flood the log
            self._outage = True
            logger.warning(
                "stemtrace could not send events to %s: %s; keeping them (%d held) and retrying",
                mask_url(self.transport.url),
                exc,
                self.held_events + len(self.buffer),
            )
        else:
            logger.debug("stemtrace send failed again, retrying in %.1fs: %s", wait, exc)

    def _sent_ok(self) -> None:
        self._backoff = 0.0
        if self._outage:
            self._outage = False
            logger.warning(
                "stemtrace reconnected to %s; %d event(s) dropped so far for buffer overflow",
                mask_url(self.transport.url),
                self.overflow,
            )

    # -- control --------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "type": LIBRARY_HEALTH,
            "ts": time.time(),
            "data": {
                "sent": self.sent,
                "dropped": self.dropped,
                "drops": {OVERFLOW: self.overflow},  # by cause, for the server's loss records
                "buffer_depth": len(self.buffer) + self.held_events,
                "buffer_size": self.limit,
                "held_bytes": self.held_bytes,
                "buffer_bytes": self.byte_limit,
                "errors": self.errors,
            },
        }

    def flush(self, timeout_s: float | None = None, *, final: bool = False) -> bool:
        """Send what is buffered, waiting at most ``timeout_s``; True when all went out."""
        deadline = time.monotonic() + (self.config.flush_timeout if timeout_s is None else timeout_s)
        if final:
            self.emit(self.health(), force=True)
        if not self.buffer and not self._inflight and not self.held_events:
            return True
        if self._thread is None or not self._thread.is_alive():
            self._thread = None
            self._start()
        if final:
            self._stopping = True
        self._retry_at = 0.0  # a final flush tries once more, whatever the backoff
        with self._cond:
            self._flush_waiters += 1
            try:
                while self.buffer or self._inflight or self.held_events:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._wake.set()
                    self._cond.wait(min(remaining, 0.05))
            finally:
                self._flush_waiters -= 1
        return True

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._publisher is not None:
            try:
                self._publisher.close()
            except Exception:
                pass
