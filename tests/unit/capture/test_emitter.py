"""How the emitter turns buffered entries into a batch: rows where it can, event objects elsewhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

from stemtrace.capture.config import CaptureConfig
from stemtrace.capture.fields import DATA_FIELDS
from stemtrace.capture.finish import Finisher
from stemtrace.capture.publisher import Emitter
from stemtrace.capture.redact import Redactor
from stemtrace.core import events as ev
from stemtrace.core.wire import decode_batch
from stemtrace.transport import TransportConfig

S = 1_000_000_000  # entries are stamped in epoch nanoseconds


def emitter(finish: Any = None) -> Emitter:
    config = CaptureConfig()
    made = Emitter(
        config, TransportConfig(url="memory://"), finish or Finisher(config, Redactor(["password"]))
    )
    made.proc, made.node = "child", "w1@h"
    return made


def buffer(made: Emitter) -> None:
    started = (1, 4321, "root", None, None, None, None, None)
    made.emit_task(ev.TASK_STARTED, "t1", "proj.add", started, ts=10 * S)
    made.emit_task(
        ev.TASK_SUCCEEDED, "t1", "proj.add", (1, 0.5, None, {"password": "x", "n": 2}), ts=105 * S // 10
    )
    failed = ({"exception_type": "builtins.ValueError", "origin": "child"}, "bad value", "Traceback ...")
    made.emit_task(ev.TASK_FAILED, "t2", "proj.div", failed, ts=11 * S)
    made.emit_task(ev.TASK_STARTED, "t3", "proj.add", started, proc="thread", ts=12 * S)
    made.emit({"type": ev.WORKER_HEARTBEAT, "ts": 13.0, "data": {"hostname": "w1@h"}})


def test_hot_events_of_the_batch_process_go_as_rows_and_the_rest_as_objects() -> None:
    made = emitter()
    buffer(made)
    batches, taken = made._take()
    assert taken == 5 and [n for _, n in batches] == [5]
    body = json.loads(batches[0][0])
    assert body["src"] == {
        "host": made.host,
        "pid": made.pid,
        "inst": made.inst,
        "proc": "child",
        "node": "w1@h",
    }
    assert body["cols"] == {
        ev.TASK_STARTED: list(DATA_FIELDS[ev.TASK_STARTED]),
        ev.TASK_SUCCEEDED: [*DATA_FIELDS[ev.TASK_SUCCEEDED], "result"],  # captured, so a column
    }
    assert [type(item).__name__ for item in body["events"]] == ["list", "list", "dict", "dict", "dict"]
    assert body["events"][3]["proc"] == "thread"

    events, errors = decode_batch(batches[0][0])
    assert errors == []
    assert [(e.type, e.ts, e.task_id, e.src.seq, e.src.proc) for e in events] == [
        (ev.TASK_STARTED, 10.0, "t1", 1, "child"),
        (ev.TASK_SUCCEEDED, 10.5, "t1", 2, "child"),
        (ev.TASK_FAILED, 11.0, "t2", 3, "child"),
        (ev.TASK_STARTED, 12.0, "t3", 4, "thread"),
        (ev.WORKER_HEARTBEAT, 13.0, None, 5, "child"),
    ]
    started = {"retries": 1, "worker_pid": 4321, "root_id": "root", "parent_id": None, "group_id": None}
    assert events[0].data == {**started, "group_index": None, "traceparent": None, "sentry_trace": None}
    assert events[1].data == {
        "retries": 1,
        "runtime": 0.5,
        "handler_runtime": None,
        "result": {"password": "[redacted]", "n": 2},
    }
    assert events[2].data["exception"] == "bad value" and events[2].data["origin"] == "child"
    assert events[3].data == events[0].data


class Broken(Finisher):
    def tail(self, etype: str, name: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
        raise RuntimeError("bug")


def test_a_failing_finisher_keeps_the_event_and_counts_the_error() -> None:
    config = CaptureConfig()
    made = emitter(Broken(config, Redactor([])))
    buffer(made)
    events, errors = decode_batch(made._take()[0][0][0])
    assert errors == [] and len(events) == 5
    # The result is a column of every success row: it says the capture failed, never the value.
    assert events[1].data == {
        "retries": 1,
        "runtime": 0.5,
        "handler_runtime": None,
        "result": {ev.REPR_KEY: "<capture failed: RuntimeError>"},
    }
    assert "exception" not in events[2].data
    assert made.errors == 2  # the succeeded and the failed event had values to capture


def test_a_malformed_entry_is_dropped_alone() -> None:
    made = emitter()
    made.emit_task(ev.TASK_STARTED, "t1", "proj.add", (0,), ts=10 * S)  # seven values short
    made.emit_task(ev.TASK_SUCCEEDED, "t1", "proj.add", (0, 0.1, None, None), ts=10_500_000_000)
    batches, taken = made._take()
    events, _ = decode_batch(batches[0][0])
    assert taken == 2 and batches[0][1] == 1 and [e.type for e in events] == [ev.TASK_SUCCEEDED]
    assert made.dropped == 1 and made.errors == 1


def test_a_task_id_that_is_not_a_string_is_sent_as_its_text() -> None:
    """Celery's ids are strings, but ``apply_async(task_id=uuid.UUID(...))`` gives the object:
    its row would carry the object's ``repr`` through the encoder's fallback, so it goes as an
    event object with the id's text instead."""
    made = emitter()
    task_id = uuid.UUID(int=7)
    made.emit_task(
        ev.TASK_STARTED, task_id, "proj.add", (0, 1, None, None, None, None, None, None), ts=10 * S
    )
    made.emit_task(ev.TASK_STARTED, "t2", "proj.add", (0, 1, None, None, None, None, None, None), ts=11 * S)
    body = json.loads(made._take()[0][0][0])
    assert [type(item).__name__ for item in body["events"]] == ["dict", "list"]
    events, errors = decode_batch(json.dumps(body).encode())
    assert errors == [] and [e.task_id for e in events] == [str(task_id), "t2"]
    assert events[0].data == events[1].data
