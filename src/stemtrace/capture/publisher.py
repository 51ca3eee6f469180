"""The per-process emitter: a bounded buffer and one background publisher thread.

Signal handlers call :meth:`Emitter.emit_task`, which stamps the event, appends
one flat tuple to a deque and returns: no I/O, no lock any I/O holds, so a hung or
unreachable broker never slows ``.delay()`` or a task. The publisher thread
(a greenlet under gevent's monkey-patching) wakes every flush interval, builds
and finishes the events (captured values are serialized and redacted there, off
the hot path), batches them (the commonest task events as rows), and sends
through its *own* transport connection, created lazily in the thread: one round
trip per interval for a steady stream.
On a broker error it drops the batch, counts it, and backs off up to 30 s.

The emitter belongs to one process: after ``fork`` the child builds a new one
(new ``inst``, sequence, buffer, thread and connection); see ``install``.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.fields import DATA_FIELDS, NOTHING_WHEN_NONE, RAW_FIELDS
from stemtrace.capture.finish import Finisher
from stemtrace.capture.payload import capture_failed
from stemtrace.core.events import LIBRARY_HEALTH, encode_batch
from stemtrace.transport import Publisher, TransportConfig, mask_url, resolve

logger = logging.getLogger("stemtrace.capture")

PeriodicSource = Callable[[], list[dict[str, Any]]]
# One buffered event, flat: (type, ts, seq, task id, task name, *values, proc, node), ``ts`` in
# epoch nanoseconds (a row sends it so: an integer encodes far faster than a float). For the
# hot task events ``values`` are those of ``fields.DATA_FIELDS`` then ``fields.RAW_FIELDS``, so
# the entry's head *is* the row sent (a slice, not a copy built field by field); for other task
# events, the data dict then the raw values; other events (worker, health) have ``None`` as
# type and their whole envelope as the one value. Nothing is nested, so the garbage collector
# untracks the entry within a collection or two (see ``fields``).
Entry = tuple[Any, ...]
MAX_BACKOFF_S = 30.0
_HEAD = 5  # type, ts, seq, task id, task name: a row's first items


Shape = tuple[tuple[str, ...], int, int, int, bool]


def _shape(etype: str, names: tuple[str, ...], columns: tuple[str, ...]) -> Shape:
    """A hot type's row fields (its ``names``, then the captured ``columns``), where its raw
    values begin and end in an entry, the entry's length, and whether a lone ``None`` raw value
    skips finishing (``fields.NOTHING_WHEN_NONE``)."""
    end = _HEAD + len(names)
    raw_end = end + len(RAW_FIELDS.get(etype, ()))
    return names + columns, end, raw_end, raw_end + 2, etype in NOTHING_WHEN_NONE  # + 2: proc, node


_MESSAGES_PER_SEND = 20


class Emitter:
    """Buffer, identity and publisher thread of one process."""

    def __init__(self, config: CaptureConfig, transport: TransportConfig, finish: Finisher) -> None:
        self.config = config
        self.transport = transport
        self._finish = finish
        # Per process: which captured fields a row carries as values depends on the options.
        self._rows = {t: _shape(t, names, finish.columns(t)) for t, names in DATA_FIELDS.items()}
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.inst = uuid.uuid4().hex
        self.sequence = itertools.count(1)  # the events' ``seq``: gaps show drops
        self.buffer: deque[Entry] = deque()
        self.limit = max(1, config.buffer_size)
        self.batch = max(1, config.batch_size)  # events per transport message
        self.sent = 0
        self.dropped = 0
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
        self._retry_at = 0.0

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
        the report of drops must not be dropped."""
        self.put((None, 0, next(self.sequence), None, None, event, proc or self.proc, self.node), force)

    def put(self, entry: Entry, force: bool = False) -> None:
        """Enqueue one ``Entry``, or count it dropped when the buffer is full. Its sequence
        number was taken all the same (``next(self.sequence)``), so the gap shows."""
        if len(self.buffer) >= self.limit and not force:
            self.dropped += 1
            return
        self.buffer.append(entry)
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
                if self._stopping and not self.buffer:
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
        """Send what was buffered when this tick began, and any full message that arrived since.

        Events that trickle in during a send wait for the next tick unless someone is
        flushing: sending them as they come would cost a round trip for every few events.
        """
        owed = len(self.buffer)
        while self.buffer:
            if owed <= 0 and len(self.buffer) < self.batch and not (self._stopping or self._flush_waiters):
                return
            if time.monotonic() < self._retry_at and not self._stopping:
                return
            if self._publisher is None:
                # Connect before finishing anything: with the broker down, events are
                # dropped (and counted) without paying for their serialization.
                try:
                    self._publisher = resolve(self.transport).publisher()
                except Exception as exc:
                    self._failed(exc, self._discard())
                    if self._stopping:
                        return
                    continue
            batches, count = self._take()
            owed -= count
            if not batches:
                continue
            self._inflight = count
            try:
                self._publisher.send(batches)
            except Exception as exc:
                self._failed(exc, count)
                if self._stopping:
                    return
                continue
            finally:
                self._inflight = 0
            self.sent += count
            self._backoff = 0.0

    def _discard(self) -> int:
        """Drop what one send would have taken; returns how many events that was."""
        count = 0
        for _ in range(_MESSAGES_PER_SEND * self.batch):
            if not self.buffer:
                break
            self.buffer.popleft()
            count += 1
        return count

    def _take(self) -> tuple[list[bytes], int]:
        batches: list[bytes] = []
        count = 0
        buffer, rows, finish_tail = self.buffer, self._rows, self._finish.tail
        while buffer and len(batches) < _MESSAGES_PER_SEND:
            # Counted as in flight before they leave the buffer, so ``flush`` always sees them in
            # one or the other; only this thread takes from the buffer, so all ``take`` are there.
            take = min(len(buffer), self.batch)
            self._inflight += take
            proc, node = buffer[0][-2], buffer[0][-1]
            header = {"host": self.host, "pid": self.pid, "inst": self.inst, "proc": proc, "node": node}
            events: list[Any] = []
            cols: dict[str, tuple[str, ...]] = {}
            for _ in range(take):
                entry = buffer.popleft()
                try:
                    # The hot path, inlined: a task event of one of the commonest types, from
                    # the batch's own process, becomes a row (``_item`` says the rest).
                    shape = rows.get(entry[0])
                    if (
                        shape is None
                        or len(entry) != shape[3]
                        or entry[-2] != proc
                        or entry[-1] != node
                        or type(entry[3]) is not str
                    ):
                        events.append(self._item(entry, header))
                        continue
                    names, end, raw_end, _, skip_none = shape
                    cols[entry[0]] = names
                    if end < raw_end and not (skip_none and entry[end] is None):
                        try:
                            tail = finish_tail(entry[0], entry[4], entry[end:raw_end])
                        except Exception as exc:  # keep the envelope: an event without data beats none
                            tail = self._no_tail(entry[0], exc)
                        events.append(entry[:end] + tail)
                    else:
                        events.append(entry[:end])
                except Exception:  # a malformed entry is a bug here: count it, keep the rest
                    self.errors += 1
                    self.dropped += 1
                    logger.debug("stemtrace could not build an event", exc_info=True)
            count += len(events)
            if events:
                batches.append(encode_batch(events, header, cols))
        return batches, count

    def _item(self, entry: Entry, header: dict[str, Any]) -> dict[str, Any]:
        """One buffered entry (see ``Entry``) that ``_take`` does not send as a row, as an event
        object of the batch ``header`` starts."""
        etype, ts, seq, task_id, name = entry[:_HEAD]
        proc, node = entry[-2], entry[-1]
        if etype is None:  # a worker or health event, given whole
            event: dict[str, Any] = entry[_HEAD]
            event["seq"] = seq
            return self._own(event, proc, node, header)
        shape = self._rows.get(etype)
        if shape is None:
            data, raw = entry[_HEAD], entry[_HEAD + 1 : -2]
        else:
            _, end, raw_end, length, _ = shape
            if len(entry) != length:
                raise ValueError(f"{etype} entry of {len(entry)} items")
            data, raw = dict(zip(DATA_FIELDS[etype], entry[_HEAD:end], strict=True)), entry[end:raw_end]
        if raw:
            extra = self._captured(etype, name, raw)
            if extra is not None:
                data.update(extra)
        event = {
            "type": etype,
            "ts": ts / 1e9,
            "task": {"id": str(task_id), "name": name},
            "data": data,
            "seq": seq,
        }
        return self._own(event, proc, node, header)

    @staticmethod
    def _own(event: dict[str, Any], proc: str, node: str | None, header: dict[str, Any]) -> dict[str, Any]:
        """``event`` with its ``proc``/``node`` where they differ from the batch's (rare: the main
        process and a pool thread share this emitter)."""
        if proc != header["proc"]:
            event["proc"] = proc
        if node != header["node"]:
            event["node"] = node
        return event

    def _captured(self, etype: str, name: Any, raw: tuple[Any, ...]) -> dict[str, Any] | None:
        try:
            return self._finish(etype, name, raw)
        except Exception as exc:
            self._unfinished(exc)  # keep the envelope: an event without data beats none
            return None

    def _no_tail(self, etype: str, exc: Exception) -> tuple[Any, ...]:
        """A row's tail when ``Finisher.tail`` failed (a bug): each captured column says so."""
        self._unfinished(exc)
        return tuple(capture_failed(exc) for _ in self._finish.columns(etype))

    def _unfinished(self, exc: Exception) -> None:
        """The finisher's bug: counted and logged; the event still goes out."""
        self.errors += 1
        logger.debug("stemtrace could not finish an event", exc_info=exc)

    def _failed(self, exc: Exception, count: int) -> None:
        self.dropped += count
        self.errors += 1
        if self._publisher is not None:
            try:
                self._publisher.close()
            except Exception:
                pass
            self._publisher = None
        self._backoff = min(MAX_BACKOFF_S, self._backoff * 2 or 0.5)
        self._retry_at = time.monotonic() + self._backoff
        logger.warning(
            "stemtrace could not send %d event(s) to %s: %s; retrying in %.1fs",
            count,
            mask_url(self.transport.url),
            exc,
            self._backoff,
        )

    # -- control --------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "type": LIBRARY_HEALTH,
            "ts": time.time(),
            "data": {
                "sent": self.sent,
                "dropped": self.dropped,
                "buffer_depth": len(self.buffer),
                "buffer_size": self.limit,
                "errors": self.errors,
            },
        }

    def flush(self, timeout_s: float | None = None, *, final: bool = False) -> bool:
        """Send what is buffered, waiting at most ``timeout_s``; True when all went out."""
        deadline = time.monotonic() + (self.config.flush_timeout if timeout_s is None else timeout_s)
        if final:
            self.emit(self.health(), force=True)
        if not self.buffer and not self._inflight:
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
                while self.buffer or self._inflight:
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
