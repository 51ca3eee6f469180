"""A task row's ``detail``: its record and its event log, compressed together.

The row keeps what the task's pages read beyond the columns: the record (``task_row.record_dict``,
JSON) and every event of the task (``[inst, seq, type, ts, v, host, pid, proc, node, name,
data]`` each, JSON), one line each, deflated as one text. The two repeat each other and
themselves (the arguments of the message and the record, the ids, names, times and processes
of every event), which deflate stores once: with the dictionary below, the record and the log
take about a quarter of their text, and less than the events took as rows of their own
(docs/adr/0014-compact-storage.md). Readers of the record stop inflating at the end of its line.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from stemtrace.core.events import Event
from stemtrace.core.jsontext import dumps as std_dumps
from stemtrace.server.jsonfast import fast_dumps, loads

# zlib's default level; an 8 KB window (a task's texts are ~3 KB) and 8 of memory: zlib's own
# defaults (32 KB, 9) spend most of a small text's time clearing their tables. Measured on the
# realistic recording: level 1 stores 18% more for 30% less of this (tiny) time.
LEVEL = 6
_WBITS = -13  # raw deflate (no header or checksum: the database keeps its own), 8 KB window
_MEMORY = 8
_LINE = b"\n"  # compact JSON holds no newline: the record's line ends at the first one
# The task's ids, in the stored text: the row's columns hold them (``task_row.IDS``), and their
# first occurrences cost ~44 bytes of a task's ~470 (a random id does not compress). Each is
# written as one byte, ``\x01`` for the task's id, ``\x02`` its root's, ``\x03`` its parent's,
# ``\x04`` its group's: JSON writes a control character inside a string as ``\u0001``, so these
# bytes never occur in the text otherwise, and each replacement is undone exactly, in reverse.
Ids = Sequence[Any]  # (id, root_id, parent_id, group_id) of the task, as ``task_row.IDS`` reads them


def _tokens(ids: Ids) -> list[tuple[bytes, bytes]]:
    if isinstance(ids, str):  # one id where the four are due: its letters would be read as ids
        raise TypeError("a task's ids are (id, root_id, parent_id, group_id), not one string")
    return [
        (value.encode("utf-8", "surrogatepass"), bytes((n,)))
        for n, value in enumerate(ids, 1)
        if value and isinstance(value, str)
    ]


# The texts are UTF-8, a lone surrogate (which ``json`` reads from ``"\ud800"`` and writes back
# as is) included: ``json.loads`` reads bytes with ``surrogatepass`` too.

# What most of these texts spell, the most frequent last: the keys of a record and of Celery's
# events' data in their usual order, with the values most tasks hold, and the frames of a traceback
# raised through Celery's tracer. Deflate refers back into it as into text seen before: a task's
# first occurrence of each key costs a few bits instead of its letters. It is part of the stored
# format: changing it makes every stored row unreadable (a new schema, see CONTRIBUTING).
ZDICT = (
    b'Traceback (most recent call last):\\n  File \\"/site-packages/celery/app/trace.py\\", line '
    b"in trace_task\\n    R = retval = fun(*args, **kwargs)\\n"
    b"in __protected_call__\\n    return self.run(*args, **kwargs)\\n"
    b'/celery/app/task.py\\", line in retry\\n    raise_with_context(exc)\\n    raise ret\\n'
    b"celery.exceptions.Retry: Retry in s: "
    b'"publisher_task_id":null,"canvas":null,"callbacks":null,"errbacks":null,"chain":null,"chord":null,'
    b'"origin":null,"shadow":null,"ignore_result":false,"redelivered":false,"retry_eta":null,'
    b'"exception_type":"builtins.","exception":"","traceback":"Traceback (most recent call last):\\n'
    b'{"id":"","name":"","state":"SUCCESS","root_id":"","parent_id":"","group_id":"","group_index":0,'
    b'"names":[""],"worker":"celery@","queue":"celery","routing_key":"celery","exchange":"",'
    b'"retries":0,"eta":null,"sent_at":,"received_at":,"started_at":,"finished_at":,"runtime_ms":,'
    b'"handler_ms":,"args":[],"kwargs":{},"result":null,"attempts":[{"number":1,"state":"SUCCESS",'
    b'"worker":"celery@","received_at":,"started_at":,"finished_at":,"runtime_ms":,"handler_ms":}],'
    b'"updated_at":}\n'
    b'[["",1,"task.published",,1,"",,"client",null,"",{"root_id":"","parent_id":null,"group_id":null,'
    b'"group_index":null,"retries":0,"eta":null,"expires":null,"queue":"celery","exchange":"",'
    b'"routing_key":"celery","replaced_task_nesting":0,"publisher_task_id":null,"shadow":null,'
    b'"ignore_result":false,"args":[],"kwargs":{}}],'
    b'["",1,"task.received",,1,"",,"main","celery@","",{"root_id":"","parent_id":null,"group_id":null,'
    b'"group_index":null,"retries":0,"eta":null,"expires":null,"replaced_task_nesting":0,'
    b'"redelivered":false,"exchange":"","routing_key":"celery","queue":"celery"}],'
    b'["",1,"task.started",,1,"",,"child","celery@","",{"retries":0,"worker_pid":,"root_id":"",'
    b'"parent_id":null,"group_id":null,"group_index":null}],'
    b'["",1,"task.failed",,1,"",,"child","celery@","",{"retries":0,"exception_type":"builtins.",'
    b'"exception":"","traceback":"Traceback (most recent call last):\\n"}],'
    b'["",1,"task.retried",,1,"",,"child","celery@","",{"retries":0,"exception_type":"builtins.",'
    b'"eta":"","exception":"","traceback":"Traceback (most recent call last):\\n"}],'
    b'["",1,"task.succeeded",,1,"",,"child","celery@","",{"retries":0,"runtime":,"handler_runtime":,'
    b'"result":null}]]'
)


_SEQ_MAX = 2**63 - 1
_SEQ_MIN = -(2**63)


def _order(e: Event) -> tuple[float, str, int]:
    src = e.src
    return (e.ts, src.inst, src.seq)


def event_log(events: Sequence[Event]) -> bytes:
    """The JSON text of a task's events, as :func:`pack` stores them: in the order the API
    lists them (by time, then ``(inst, seq)``), so the same events give the same text
    whichever batches brought them."""
    items: list[list[Any]] = []
    finite = True
    for e in sorted(events, key=_order) if len(events) > 1 else events:
        src = e.src
        if not _SEQ_MIN <= src.seq <= _SEQ_MAX:  # what a BIGINT column refused: quarantined
            raise OverflowError(f"event seq {src.seq} is outside 64-bit signed integers")
        ts = e.ts
        finite = finite and ts - ts == 0.0
        item: list[Any] = [
            src.inst,
            src.seq,
            e.type,
            ts,
            e.v,
            src.host,
            src.pid,
            src.proc,
            src.node,
            e.task_name,
        ]
        item.append(e.data)
        items.append(item)
    # orjson writes a plain non-finite float as ``null``: such a time is json's text.
    text = fast_dumps(items) if finite else None
    if text is None:  # json's text, with ``data`` as ``to_dict`` gives it (any Mapping)
        for item in items:
            item[-1] = dict(item[-1])
        text = std_dumps(items)
    return text.encode("utf-8", "surrogatepass")


def pack(ids: Ids, record: str, log: bytes) -> bytes:
    """The stored ``detail`` of the task of these ``ids``: the record's JSON text and the event
    log (:func:`event_log`), each id written as one byte."""
    text = record.encode("utf-8", "surrogatepass") + _LINE + log
    for value, token in _tokens(ids):
        text = text.replace(value, token)
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _WBITS, _MEMORY, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return deflate.compress(text) + deflate.flush()


def _inflate(blob: bytes, *, record_only: bool) -> bytes:
    inflate = zlib.decompressobj(_WBITS, ZDICT)
    if not record_only:
        return inflate.decompress(blob) + inflate.flush()
    out = inflate.decompress(blob, 4096)
    while _LINE not in out and inflate.unconsumed_tail:
        out += inflate.decompress(inflate.unconsumed_tail, 4096)
    return out


def _own(text: bytes, ids: Ids) -> bytes:
    """``text`` with the task's ids back in place of their bytes (``pack``)."""
    for value, token in reversed(_tokens(ids)):
        text = text.replace(token, value)
    return text


def load_record(ids: Ids, blob: bytes) -> Any:
    """The stored record of the task of these ``ids`` (``task_row.record_dict``), parsed as
    ``json`` reads it; the event log after it is not inflated."""
    return json.loads(_own(_inflate(blob, record_only=True).partition(_LINE)[0], ids))


def stored_log(ids: Ids, blob: bytes) -> bytes:
    """The stored event log's JSON text (for a row rewritten without its events)."""
    return _own(_inflate(blob, record_only=False).partition(_LINE)[2], ids)


def load_events(ids: Ids, blob: bytes) -> list[dict[str, Any]]:
    """The stored events of the task of these ``ids``, each as ``Event.to_dict()`` gives it, by
    time (then ``(inst, seq)``)."""
    task_id = ids[0]
    log = _own(_inflate(blob, record_only=False).partition(_LINE)[2], ids)
    return [
        {
            "v": v,
            "type": etype,
            "ts": ts,
            "src": {"host": host, "pid": pid, "inst": inst, "seq": seq, "proc": proc, "node": node},
            "data": data,
            "task": {"id": task_id, "name": name},
        }
        for inst, seq, etype, ts, v, host, pid, proc, node, name, data in loads(log)
    ]
