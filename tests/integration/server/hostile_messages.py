"""A corpus of hostile stream messages: what a broken, old, future or malicious sender can put
on the event stream. Each is the raw bytes of one transport message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from server_events import EventFactory

from stemtrace.core.events import encode_batch

MB = 1024 * 1024


def envelope(etype: str = "task.published", task_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A healthy-looking v1 envelope from a fresh process, for a hostile change."""
    f = EventFactory()
    tid = task_id if task_id is not None else f"h-{uuid.uuid4().hex[:12]}"
    return f.raw(etype, tid if etype.startswith("task.") else None, "proj.hostile", **data)


def text(value: Any) -> bytes:
    return json.dumps(value).encode()


def with_task(**task: Any) -> bytes:
    e = envelope()
    e["task"] = {**e["task"], **task}
    return text([e])


def with_src(**src: Any) -> bytes:
    e = envelope()
    e["src"] = {**e["src"], **src}
    return text([e])


def with_data(etype: str = "task.published", **data: Any) -> bytes:
    return text([envelope(etype, **data)])


def with_ts(ts_text: str) -> bytes:
    e = envelope()
    e["ts"] = "TS"
    return text([e]).replace(b'"TS"', ts_text.encode())


def nested(depth: int, where: str = "message") -> bytes:
    inner = "[" * depth + "1" + "]" * depth
    if where == "message":
        return inner.encode()
    return text([envelope(args="DEEP")]).replace(b'"DEEP"', inner.encode())


def duplicate_keys() -> bytes:
    e = envelope()
    body = text(e).decode()
    return ("[" + body[:-1] + ', "type": "task.succeeded", "task": {"id": ["dup"]}}]').encode()


def compact(**changes: Any) -> bytes:
    e = envelope()
    src = dict(e["src"])
    src.pop("seq")
    batch: dict[str, Any] = {"v": 4, "src": src, "events": [{**e, "seq": 1}]}
    batch.update(changes)
    return text(batch)


def health(**counters: Any) -> bytes:
    return text([envelope("library.health", **counters)])


def deep_canvas() -> bytes:
    deep = '[{"type": "group", "id": "g", "tasks": ' * 300 + "[]" + "}]" * 300
    return with_data(canvas={"chain": "DEEP"}).replace(b'"DEEP"', deep.encode())


def many_events(n: int) -> bytes:
    f = EventFactory()
    events = [
        e.to_dict() for i in range(n // 4) for e in f.run(f"big-{f.inst[:6]}-{i}", "proj.big", i * 0.001)
    ]
    return encode_batch(events)


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
    ("seq is 2**63", lambda: with_src(seq=2**63)),
    ("seq is 2**64 + 1", lambda: with_src(seq=2**64 + 1)),
    ("seq is negative", lambda: with_src(seq=-5)),
    ("seq is a float", lambda: with_src(seq=1.5)),
    ("pid is 2**63", lambda: with_src(pid=2**63)),
    ("inst of 1 MB", lambda: with_src(inst="x" * MB)),
    ("inst with a NUL byte", lambda: with_src(inst="in\x00st")),
    ("host with NUL and surrogate", lambda: with_src(host="h\x00\udc00")),
    ("host of 1 MB", lambda: with_src(host="h" * MB)),
    ("node is a list", lambda: with_src(node=["w1"])),
    ("proc is an object", lambda: with_src(proc={"x": 1})),
    ("retries is 2**70", lambda: with_data(retries=2**70)),
    ("retries is text", lambda: with_data(retries="three")),
    ("retries is negative", lambda: with_data(retries=-3)),
    ("group index is huge", lambda: with_data(group_index=2**40)),
    ("runtime is text", lambda: with_data("task.succeeded", runtime="fast")),
    ("runtime is 1e308", lambda: with_data("task.succeeded", runtime=1e308)),
    ("runtime is negative", lambda: with_data("task.succeeded", runtime=-4.0)),
    ("runtime is NaN", lambda: text([envelope("task.succeeded", runtime="N")]).replace(b'"N"', b"NaN")),
    (
        "runtime is Infinity",
        lambda: text([envelope("task.succeeded", runtime="N")]).replace(b'"N"', b"Infinity"),
    ),
    ("exception type of 10 KB", lambda: with_data("task.failed", exception_type="E" * 10_000)),
    ("exception is an object", lambda: with_data("task.failed", exception={"msg": 1}, exception_type="E")),
    ("traceback of 2 MB", lambda: with_data("task.failed", traceback="t" * 2 * MB, exception_type="E")),
    ("eta is a number past year 9999", lambda: with_data(eta=1e300, expires={"at": 1})),
    (
        "args with a NUL byte and a surrogate",
        lambda: with_data(args=["a\x00", "\udc80"], kwargs={"k\x00": 1}),
    ),
    ("args with integers past 64 bits", lambda: with_data(args=[2**64 + 1, -(2**80), 10**30])),
    ("args with NaN", lambda: text([envelope(args="N")]).replace(b'"N"', b"[NaN, -Infinity, 1e400]")),
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
        lambda: text([{**envelope(args=["g" * MB]), "task": {"id": "cu-1", "name": "celery.chord_unlock"}}]),
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
    (
        "compact row with ts past year 9999",
        lambda: compact(v=4, cols={"task.started": []}, events=[["task.started", 10**22, 1, "row-1", "n"]]),
    ),
    (
        "compact row with a list task id",
        lambda: compact(
            cols={"task.started": []}, events=[["task.started", 1_790_000_000 * 10**9, 1, ["x"], "n"]]
        ),
    ),
    ("compact batch with src a list", lambda: compact(src=["h"])),
    ("compact batch with cols an array", lambda: compact(cols=[1, 2])),
    ("compact batch of version 5", lambda: compact(v=5)),
    ("compact batch with events null", lambda: compact(events=None)),
    ("compact batch with no events", lambda: compact(events=[])),
    ("library.health with text counters", lambda: health(sent="lots", dropped=[1], errors={"e": 1})),
    ("library.health with huge counters", lambda: health(sent=2**70, dropped=1e300, buffer_depth=-1)),
    ("library.health shadowing its columns", lambda: health(inst=["x"], host=None, pid="p", ts="t", seq=[])),
    (
        "worker heartbeat of wrong types",
        lambda: text(
            [
                envelope(
                    "worker.heartbeat", hostname=["w"], loadavg=["x"], active=5, processed="many", interval=-1
                )
            ]
        ),
    ),
    ("worker online with a 1 MB hostname", lambda: text([envelope("worker.online", hostname="w" * MB)])),
    (
        "worker online with NUL hostname",
        lambda: text([envelope("worker.online", hostname="w\x00@h", queues=[1, None, "q\x00"])]),
    ),
    (
        "worker heartbeat interval NaN",
        lambda: text([envelope("worker.heartbeat", interval="N")]).replace(b'"N"', b"NaN"),
    ),
    ("duplicate keys", duplicate_keys),
    ("unknown event type", lambda: text([{**envelope(), "type": "task.exploded"}])),
    ("type is a number", lambda: text([{**envelope(), "type": 7}])),
    ("version 99", lambda: text([{**envelope(), "v": 99}])),
    ("version is text", lambda: text([{**envelope(), "v": "1"}])),
    ("version negative", lambda: text([{**envelope(), "v": -1}])),
    ("src is a list", lambda: text([{**envelope(), "src": ["h", 1]}])),
    ("data is a list", lambda: text([{**envelope(), "data": [1, 2]}])),
    ("data is text", lambda: text([{**envelope(), "data": "x"}])),
    ("task is text", lambda: text([{**envelope(), "task": "t"}])),
    ("empty array", lambda: b"[]"),
    ("empty object", lambda: b"{}"),
    ("empty payload", lambda: b""),
    ("null", lambda: b"null"),
    ("a number", lambda: b"5"),
    ("a string", lambda: b'"hello"'),
    ("array of junk", lambda: b'[1, "a", null, [], {}]'),
    ("invalid UTF-8", lambda: b'[{"v": 1, "type": "task.started\xff\xfe"}]'),
    ("truncated JSON", lambda: with_data()[:40]),
    ("UTF-16 text", lambda: with_data().decode().encode("utf-16")),
    ("a BOM before JSON", lambda: b"\xef\xbb\xbf" + with_data()),
    (
        "19-digit numbers everywhere",
        lambda: with_data(retries=1234567890123456789, args=[9223372036854775807]),
    ),
    ("oversized batch (20,000 events)", lambda: many_events(20_000)),
]
