"""Building one transport message from buffered entries: rows for the hot task events, event
objects for the rest, finished (captured values serialized and redacted) and encoded.

The emitter (``publisher``) owns the buffer, the thread and the connection; this module only
turns a list of entries it took into bytes. It runs on the publisher thread, never in a
signal handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from stemtrace.capture.fields import DATA_FIELDS, NOTHING_WHEN_NONE, RAW_FIELDS
from stemtrace.capture.finish import Finisher
from stemtrace.capture.payload import capture_failed
from stemtrace.core.wire import encode_batch

logger = logging.getLogger("stemtrace.capture")

# One buffered event, flat: (type, ts, seq, task id, task name, *values, proc, node), ``ts`` in
# epoch nanoseconds (a row sends it so: an integer encodes far faster than a float). For the
# hot task events ``values`` are those of ``fields.DATA_FIELDS`` then ``fields.RAW_FIELDS``, so
# the entry's head *is* the row sent (a slice, not a copy built field by field); for other task
# events, the data dict then the raw values; other events (worker, health) have ``None`` as
# type and their whole envelope as the one value. Nothing is nested, so the garbage collector
# untracks the entry within a collection or two (see ``fields``).
Entry = tuple[Any, ...]
HEAD = 5  # type, ts, seq, task id, task name: a row's first items

Shape = tuple[tuple[str, ...], int, int, int, bool]


def _shape(etype: str, names: tuple[str, ...], columns: tuple[str, ...]) -> Shape:
    """A hot type's row fields (its ``names``, then the captured ``columns``), where its raw
    values begin and end in an entry, the entry's length, and whether a lone ``None`` raw value
    skips finishing (``fields.NOTHING_WHEN_NONE``)."""
    end = HEAD + len(names)
    raw_end = end + len(RAW_FIELDS.get(etype, ()))
    return names + columns, end, raw_end, raw_end + 2, etype in NOTHING_WHEN_NONE  # + 2: proc, node


class MessageBuilder:
    """Entries to one encoded message, for one process's emitter.

    ``failed(exc, lost)`` is told of each bug met while building (``lost``: the entry could
    not be sent at all; otherwise the event went out without its captured values); the
    emitter counts them for ``library.health``.
    """

    def __init__(self, finish: Finisher, failed: Callable[[Exception, bool], None]) -> None:
        self._finish = finish
        self._failed = failed
        # Per process: which captured fields a row carries as values depends on the options.
        self._rows = {t: _shape(t, names, finish.columns(t)) for t, names in DATA_FIELDS.items()}

    def build(self, entries: Sequence[Entry], header: dict[str, Any]) -> tuple[bytes, int] | None:
        """The message of ``entries`` (all taken for one batch ``header``) and how many events it
        holds, or ``None`` when none could be built."""
        proc, node = header["proc"], header["node"]
        rows, finish_tail = self._rows, self._finish.tail
        events: list[Any] = []
        cols: dict[str, tuple[str, ...]] = {}
        for entry in entries:
            try:
                # The hot path, inlined: a task event of one of the commonest types, from the
                # batch's own process, becomes a row (``_item`` says the rest).
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
            except Exception as exc:  # a malformed entry is a bug here: count it, keep the rest
                self._failed(exc, True)
        if not events:
            return None
        return encode_batch(events, header, cols), len(events)

    def _item(self, entry: Entry, header: dict[str, Any]) -> dict[str, Any]:
        """One buffered entry that ``build`` does not send as a row, as an event object of the
        batch ``header`` starts."""
        etype, ts, seq, task_id, name = entry[:HEAD]
        proc, node = entry[-2], entry[-1]
        if etype is None:  # a worker or health event, given whole
            event: dict[str, Any] = entry[HEAD]
            event["seq"] = seq
            return _own(event, proc, node, header)
        shape = self._rows.get(etype)
        if shape is None:
            data, raw = entry[HEAD], entry[HEAD + 1 : -2]
        else:
            _, end, raw_end, length, _ = shape
            if len(entry) != length:
                raise ValueError(f"{etype} entry of {len(entry)} items")
            data, raw = dict(zip(DATA_FIELDS[etype], entry[HEAD:end], strict=True)), entry[end:raw_end]
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
        return _own(event, proc, node, header)

    def _captured(self, etype: str, name: Any, raw: tuple[Any, ...]) -> dict[str, Any] | None:
        """The captured fields of an event sent as an object: its row tail, named."""
        try:
            tail = self._finish.tail(etype, name, raw)
        except Exception as exc:
            self._failed(exc, False)  # keep the envelope: an event without data beats none
            return None
        names = self._finish.columns(etype)
        data = dict(zip(names, tail, strict=False))  # the columns' values, then an object of the rest
        if len(tail) > len(names):
            data.update(tail[-1])
        return data or None

    def _no_tail(self, etype: str, exc: Exception) -> tuple[Any, ...]:
        """A row's tail when ``Finisher.tail`` failed (a bug): each captured column says so."""
        self._failed(exc, False)
        return tuple(capture_failed(exc) for _ in self._finish.columns(etype))


def _own(event: dict[str, Any], proc: str, node: str | None, header: dict[str, Any]) -> dict[str, Any]:
    """``event`` with its ``proc``/``node`` where they differ from the batch's (rare: the main
    process and a pool thread share this emitter)."""
    if proc != header["proc"]:
        event["proc"] = proc
    if node != header["node"]:
        event["node"] = node
    return event
