"""A corpus of hostile stream messages: what a broken, old, future or malicious sender can put
on the event stream. Each is the raw bytes of one transport message: a batch object of the wire
format (``core/wire.py``) with something wrong in it, or no batch at all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from stemtrace.core.events import Event

MB = 1024 * 1024
TS = 1_790_000_000.0


def source(**changes: Any) -> dict[str, Any]:
    """A fresh process's batch ``src``."""
    return {"host": "h1", "pid": 42, "inst": uuid.uuid4().hex, "proc": "child", "node": "w1@h1", **changes}


def item(etype: str = "task.published", task_id: str | None = None, **data: Any) -> dict[str, Any]:
    """One event object of a batch, healthy until a test changes it."""
    out: dict[str, Any] = {"type": etype, "ts": TS, "seq": 1, "data": data}
    if etype.startswith("task."):
        out["task"] = {"id": task_id or f"h-{uuid.uuid4().hex[:12]}", "name": "proj.hostile"}
    return out


def batch(*items: Any, src: Any = None, **top: Any) -> dict[str, Any]:
    return {"v": 1, "src": source() if src is None else src, "events": list(items), **top}


def text(value: Any) -> bytes:
    return json.dumps(value).encode()


def as_batch(events: Sequence[Event]) -> bytes:
    """Healthy events of one process as one message."""
    first = events[0].src
    src = {"host": first.host, "pid": first.pid, "inst": first.inst, "proc": first.proc, "node": first.node}
    items = []
    for e in events:
        obj: dict[str, Any] = {"type": e.type, "ts": e.ts, "seq": e.src.seq, "data": dict(e.data)}
        if e.task_id is not None:
            obj["task"] = {"id": e.task_id, "name": e.task_name}
        items.append(obj)
    return text(batch(*items, src=src))


def with_task(**task: Any) -> bytes:
    e = item()
    e["task"] = {**e["task"], **task}
    return text(batch(e))


def with_src(**src: Any) -> bytes:
    return text(batch(item(), src=source(**src)))


def with_seq(seq: Any) -> bytes:
    return text(batch({**item(), "seq": seq}))


def with_data(etype: str = "task.published", **data: Any) -> bytes:
    return text(batch(item(etype, **data)))


def with_literal(etype: str, field: str, literal: str) -> bytes:
    """``data[field]`` spelled as a JSON literal json.dumps would not write (NaN, 1e400)."""
    return with_data(etype, **{field: "LITERAL"}).replace(b'"LITERAL"', literal.encode())


def with_ts(ts_text: str) -> bytes:
    return text(batch({**item(), "ts": "TS"})).replace(b'"TS"', ts_text.encode())


def nested(depth: int, where: str = "message") -> bytes:
    inner = "[" * depth + "1" + "]" * depth
    if where == "message":
        return inner.encode()
    return with_data(args="DEEP").replace(b'"DEEP"', inner.encode())


def duplicate_keys() -> bytes:
    body = text(batch(item())).decode()
    return (
        body[:-1] + ', "events": [{"type": "task.started", "ts": 1, "seq": 1, "task": {"id": ["dup"]}}]}'
    ).encode()


def rows(*rows: Any, cols: Any = None) -> bytes:
    return text(batch(*rows, cols={"task.started": []} if cols is None else cols))


def health(**counters: Any) -> bytes:
    return text(batch(item("library.health", **counters)))


def deep_canvas() -> bytes:
    deep = '[{"type": "group", "id": "g", "tasks": ' * 300 + "[]" + "}]" * 300
    return with_data(canvas={"chain": "DEEP"}).replace(b'"DEEP"', deep.encode())


def many_events(n: int) -> bytes:
    """One message of ``n`` events: more than one ingest transaction (5,000) holds."""
    src = source()
    items = [
        {**item("task.started", f"big-{src['inst'][:6]}-{i}"), "seq": i + 1, "ts": TS + i / 1000}
        for i in range(n)
    ]
    return text(batch(*items, src=src))


HOSTILE: list[tuple[str, Callable[[], bytes]]] = [
    ("task id is a list", lambda: with_task(id=["a", "b"])),
    ("task id is an object", lambda: with_task(id={"id": "x"})),
    ("task id of 1 MB", lambda: with_task(id="i" * MB)),
    ("task id with a NUL byte", lambda: with_task(id="a\x00b")),
    ("task id is a lone surrogate", lambda: with_task(id="\udc80")),
    ("task name of 1 MB", lambda: with_task(name="n" * MB)),
    ("task name with NUL and surrogate", lambda: with_task(name="a\x00\ud800")),
    ("queue is a list", lambda: with_data(queue=["celery", "other"])),
    ("queue is an object", lambda: with_data(queue={"name": "celery"})),
    ("queue with a NUL byte", lambda: with_data(queue="cel\x00ery")),
    ("queue of 1 MB", lambda: with_data(queue="q" * MB)),
    ("parent and root ids are objects", lambda: with_data(parent_id={"a": 1}, root_id=["r"])),
    ("root id of 100 KB", lambda: with_data(root_id="r" * 100_000)),
    ("group id with a lone surrogate", lambda: with_data(group_id="g\udfff")),
    ("seq is 2**63", lambda: with_seq(2**63)),
    ("seq is 2**64 + 1", lambda: with_seq(2**64 + 1)),
    ("seq is negative", lambda: with_seq(-5)),
    ("seq is a float", lambda: with_seq(1.5)),
    ("seq is text", lambda: with_seq("1")),
    ("pid is 2**63", lambda: with_src(pid=2**63)),
    ("inst of 1 MB", lambda: with_src(inst="x" * MB)),
    ("inst with a NUL byte", lambda: with_src(inst="in\x00st")),
    ("host with NUL and surrogate", lambda: with_src(host="h\x00\udc00")),
    ("host of 1 MB", lambda: with_src(host="h" * MB)),
    ("node is a list", lambda: with_src(node=["w1"])),
    ("proc is an object", lambda: with_src(proc={"x": 1})),
    (
        "an event's own proc and node of wrong types",
        lambda: text(batch({**item(), "proc": [1], "node": {"n": 1}})),
    ),
    ("retries is 2**70", lambda: with_data(retries=2**70)),
    ("retries is text", lambda: with_data(retries="three")),
    ("retries is negative", lambda: with_data(retries=-3)),
    ("group index is huge", lambda: with_data(group_index=2**40)),
    ("runtime is text", lambda: with_data("task.succeeded", runtime="fast")),
    ("runtime is 1e308", lambda: with_data("task.succeeded", runtime=1e308)),
    ("runtime is negative", lambda: with_data("task.succeeded", runtime=-4.0)),
    ("runtime is NaN", lambda: with_literal("task.succeeded", "runtime", "NaN")),
    ("runtime is Infinity", lambda: with_literal("task.succeeded", "runtime", "Infinity")),
    ("exception type of 10 KB", lambda: with_data("task.failed", exception_type="E" * 10_000)),
    ("exception is an object", lambda: with_data("task.failed", exception={"msg": 1}, exception_type="E")),
    ("traceback of 2 MB", lambda: with_data("task.failed", traceback="t" * 2 * MB, exception_type="E")),
    ("eta is a number past year 9999", lambda: with_data(eta=1e300, expires={"at": 1})),
    (
        "args with a NUL byte and a surrogate",
        lambda: with_data(args=["a\x00", "\udc80"], kwargs={"k\x00": 1}),
    ),
    ("args with integers past 64 bits", lambda: with_data(args=[2**64 + 1, -(2**80), 10**30])),
    ("args with NaN", lambda: with_literal("task.published", "args", "[NaN, -Infinity, 1e400]")),
    ("args nested 200 levels", lambda: nested(200, "args")),
    ("args nested 1,100 levels", lambda: nested(1100, "args")),
    ("message nested 1,100 levels", lambda: nested(1100)),
    ("message nested 100,000 levels", lambda: nested(100_000)),
    ("kwargs with 50,000 keys", lambda: with_data(kwargs={f"k{i}": i for i in range(50_000)})),
    ("canvas is a list", lambda: with_data(canvas=["chain"])),
    ("canvas with a 10 KB id", lambda: with_data(canvas={"chain": [{"type": "task", "id": "c" * 10_000}]})),
    ("canvas nested deeply", deep_canvas),
    (
        "chord_unlock with args of 1 MB",
        lambda: text(batch({**item(args=["g" * MB]), "task": {"id": "cu-1", "name": "celery.chord_unlock"}})),
    ),
    ("timestamp after year 9999", lambda: with_ts("253402300800.5")),
    ("timestamp 1e20", lambda: with_ts("1e20")),
    ("timestamp 1e400", lambda: with_ts("1e400")),
    ("timestamp NaN", lambda: with_ts("NaN")),
    ("timestamp Infinity", lambda: with_ts("Infinity")),
    ("timestamp negative", lambda: with_ts("-1700000000")),
    ("timestamp tiny", lambda: with_ts("1e-300")),
    ("timestamp is text", lambda: with_ts('"2026-01-01"')),
    ("timestamp is true", lambda: with_ts("true")),
    ("row with ts past year 9999", lambda: rows(["task.started", 10**22, 1, "row-1", "n"])),
    ("row with a list task id", lambda: rows(["task.started", int(TS * 1e9), 1, ["x"], "n"])),
    ("row with a 1 MB task id", lambda: rows(["task.started", int(TS * 1e9), 1, "r" * MB, "n"])),
    ("row of the wrong length", lambda: rows(["task.started", int(TS * 1e9), 1, "row-2", "n", 1, 2, 3])),
    ("row with no cols", lambda: rows(["task.started", int(TS * 1e9), 1, "row-3", "n"], cols={})),
    ("empty row", lambda: rows([])),
    ("batch with src a list", lambda: text(batch(item(), src=["h"]))),
    ("batch with cols an array", lambda: text(batch(item(), cols=[1, 2]))),
    ("batch of version 2", lambda: text({**batch(item()), "v": 2})),
    ("batch of version 99", lambda: text({**batch(item()), "v": 99})),
    ("batch of version text", lambda: text({**batch(item()), "v": "1"})),
    ("batch of version negative", lambda: text({**batch(item()), "v": -1})),
    ("batch with events null", lambda: text({**batch(), "events": None})),
    ("batch with no events", lambda: text(batch())),
    ("library.health with text counters", lambda: health(sent="lots", dropped=[1], errors={"e": 1})),
    ("library.health with huge counters", lambda: health(sent=2**70, dropped=1e300, buffer_depth=-1)),
    ("library.health shadowing its columns", lambda: health(inst=["x"], host=None, pid="p", ts="t", seq=[])),
    (
        "worker heartbeat of wrong types",
        lambda: with_data(
            "worker.heartbeat", hostname=["w"], loadavg=["x"], active=5, processed="many", interval=-1
        ),
    ),
    ("worker online with a 1 MB hostname", lambda: with_data("worker.online", hostname="w" * MB)),
    (
        "worker online with NUL hostname",
        lambda: with_data("worker.online", hostname="w\x00@h", queues=[1, None, "q\x00"]),
    ),
    ("worker heartbeat interval NaN", lambda: with_literal("worker.heartbeat", "interval", "NaN")),
    ("duplicate keys", duplicate_keys),
    ("unknown event type", lambda: text(batch({**item(), "type": "task.exploded"}))),
    ("type is a number", lambda: text(batch({**item(), "type": 7}))),
    ("data is a list", lambda: text(batch({**item(), "data": [1, 2]}))),
    ("data is text", lambda: text(batch({**item(), "data": "x"}))),
    ("task is text", lambda: text(batch({**item(), "task": "t"}))),
    ("an event that is a number", lambda: text(batch(5, "x", None, True))),
    ("an old array of envelopes", lambda: text([{**item(), "v": 1, "src": {**source(), "seq": 1}}])),
    ("empty array", lambda: b"[]"),
    ("empty object", lambda: b"{}"),
    ("empty payload", lambda: b""),
    ("null", lambda: b"null"),
    ("a number", lambda: b"5"),
    ("a string", lambda: b'"hello"'),
    ("array of junk", lambda: b'[1, "a", null, [], {}]'),
    ("invalid UTF-8", lambda: with_data(queue="QQ").replace(b"QQ", b"\xff\xfe")),
    ("truncated JSON", lambda: with_data()[:40]),
    ("UTF-16 text", lambda: with_data().decode().encode("utf-16")),
    ("a BOM before JSON", lambda: b"\xef\xbb\xbf" + with_data()),
    (
        "19-digit numbers everywhere",
        lambda: with_data(retries=1234567890123456789, args=[9223372036854775807]),
    ),
    ("oversized batch (8,000 events)", lambda: many_events(8_000)),
]
