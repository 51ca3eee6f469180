"""The emitter against the real Redis: completeness, overflow, broken brokers, fork, exit."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from tests.support import AppSettings, make_app, read_stream

import stemtrace.capture.install as capture
from stemtrace.capture import state
from stemtrace.capture.fields import DATA_FIELDS
from stemtrace.core.wire import BATCH_VERSION

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def _events(settings: AppSettings) -> list[dict]:  # type: ignore[type-arg]
    return read_stream(settings.broker_url, settings.stream_key)[0]


def _published(settings: AppSettings) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in _events(settings) if e["type"] == "task.published"]


def test_ten_thousand_events_at_normal_rate_arrive_complete(settings: AppSettings) -> None:
    tasks = make_app(settings)
    ids = [tasks.add.delay(i, i).id for i in range(10_000)]
    assert capture.flush(10.0)
    events = _published(settings)
    assert [e["task"]["id"] for e in events] == ids
    # No hole in the process's seqs (a slow run may see a library.health report among them).
    seqs = [e["src"]["seq"] for e in _events(settings) if e["src"]["inst"] == events[0]["src"]["inst"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 10_000
    st = state.current()
    assert st is not None and st.emitter().dropped == 0
    # On the wire each message is a compact batch: the process is stated once, not per event,
    # and the field names of the published events once, not per row.
    client = redis.Redis.from_url(settings.broker_url)
    try:
        raw = cast(  # redis-py's shape without decode_responses
            "list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(settings.stream_key, count=1)
        )
    finally:
        client.close()
    body = json.loads(raw[0][1][b"b"])
    assert body["v"] == BATCH_VERSION
    assert body["src"]["inst"] == st.emitter().inst and body["src"]["proc"] == "client"
    # The captured arguments are columns too: no object per row for a plain ``.delay()``.
    assert body["cols"] == {"task.published": [*DATA_FIELDS["task.published"], "args", "kwargs"]}
    assert all(type(e) is list and e[0] == "task.published" for e in body["events"])
    assert [e[-2:] for e in body["events"][:3]] == [[[i, i], {}] for i in range(3)]
    assert [e["data"]["args"] for e in events[:3]] == [[0, 0], [1, 1], [2, 2]]
    assert all(type(e[1]) is int for e in body["events"])  # epoch nanoseconds


def test_a_steady_trickle_goes_out_in_full_messages(settings: AppSettings) -> None:
    """Events that arrive during a send wait for the next tick (or until they fill a message):
    sending them as they trickle in would cost a broker round trip per few events."""
    tuned = dataclasses.replace(settings, options={"flush_interval": 0.2, "batch_size": 200})
    tasks = make_app(tuned)
    tasks.add.delay(0, 0)
    assert capture.flush(5.0)
    start = time.monotonic()
    for i in range(3000):
        tasks.add.delay(i, i)
    ticks = (time.monotonic() - start) / 0.2
    assert capture.flush(10.0)
    client = redis.Redis.from_url(settings.broker_url)
    try:
        messages = client.xlen(settings.stream_key) - 1
    finally:
        client.close()
    assert len(_published(tuned)) == 3001
    # At most one part-filled message per tick begun, plus the full ones, the final flush and a
    # library health report (the stream holds those too): a send per few events would be hundreds.
    assert messages <= 3000 // 200 + math.ceil(ticks) + 1 + 2, (messages, ticks)


def test_buffered_events_of_plain_sends_are_left_to_reference_counting(settings: AppSettings) -> None:
    """Events waiting for a flush must not add to the garbage collector's work in a big heap.

    An event of a plain send holds only strings, numbers and ``None``, so the collector untracks
    it; one whose kwargs are a dict stays tracked (the same Celery values, shown for contrast).
    The wire format is unchanged: empty kwargs still arrive as ``{}``.
    """
    tuned = dataclasses.replace(settings, options={"flush_interval": 30})
    tasks = make_app(tuned)
    plain = [tasks.add.delay(i, i).id for i in range(50)]
    keyed = [tasks.add.delay(i, y=i).id for i in range(50)]
    emitter = state.current().emitter()  # type: ignore[union-attr]
    entries = {entry[3]: entry for entry in emitter.buffer}
    assert len(entries) == 100
    for _ in range(3):  # each pass untracks one more level of nesting
        gc.collect()
    assert not any(gc.is_tracked(entries[task_id]) for task_id in plain)
    assert all(gc.is_tracked(entries[task_id]) for task_id in keyed)
    assert capture.flush(5.0)
    by_id = {e["task"]["id"]: e["data"] for e in _published(tuned)}
    assert by_id[plain[3]]["args"] == [3, 3] and by_id[plain[3]]["kwargs"] == {}
    assert by_id[keyed[3]]["args"] == [3] and by_id[keyed[3]]["kwargs"] == {"y": 3}
    assert by_id[plain[3]]["queue"] == settings.queue and "canvas" not in by_id[plain[3]]


def test_overflow_drops_are_counted_and_reported(settings: AppSettings) -> None:
    tuned = dataclasses.replace(settings, options={"buffer_size": 50, "flush_interval": 30})
    tasks = make_app(tuned)
    for i in range(500):  # the publisher sleeps 30 s between rounds: only 50 fit
        tasks.add.delay(i, i)
    emitter = state.current().emitter()  # type: ignore[union-attr]
    assert emitter.dropped == 450
    capture.uninstall(5.0)  # final flush sends the buffer and a health event
    events = _events(tuned)
    assert len([e for e in events if e["type"] == "task.published"]) == 50
    health = [e for e in events if e["type"] == "library.health"]
    assert health[-1]["data"]["dropped"] == 450
    assert health[-1]["data"]["buffer_size"] == 50


@pytest.fixture
def hung_broker() -> Iterator[str]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def _queue_length(settings: AppSettings) -> int:
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return int(client.llen(settings.prefix + settings.queue))
    finally:
        client.close()


def test_hung_event_broker_does_not_stall_delay(settings: AppSettings, hung_broker: str) -> None:
    tuned = dataclasses.replace(settings, options={"url": hung_broker, "connect_timeout": 10})
    tasks = make_app(tuned)
    tasks.add.delay(0, 0)
    time.sleep(0.5)  # the publisher is now blocked waiting for the hung broker's reply
    emitter = state.current().emitter()  # type: ignore[union-attr]
    for i in range(300):
        tasks.add.delay(i, i)
    # All sends returned while the publisher was still stuck in its first attempt.
    assert emitter.sent == 0 and emitter.dropped == 0
    assert _queue_length(tuned) == 301
    started = time.monotonic()
    assert capture.flush(1.0) is False  # nothing could go out, and flush kept its deadline
    assert time.monotonic() - started < 3.0


def test_refused_event_broker_keeps_the_events_for_later(settings: AppSettings) -> None:
    tuned = dataclasses.replace(settings, options={"url": "redis://127.0.0.1:1/0", "flush_interval": 0.05})
    tasks = make_app(tuned)
    for i in range(200):
        tasks.add.delay(i, i)
    assert _queue_length(tuned) == 200  # every task was sent to the real broker
    emitter = state.current().emitter()  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while emitter.held_events < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Held (finished, compressed) for the broker's return: nothing dropped, nothing sent.
    assert emitter.held_events == 200 and emitter.dropped == 0
    assert emitter.errors >= 1 and emitter.sent == 0


def test_unresolvable_event_broker_is_harmless(settings: AppSettings) -> None:
    tuned = dataclasses.replace(settings, options={"url": "redis://no-such-host.invalid:6379/0"})
    tasks = make_app(tuned)
    for i in range(50):
        tasks.add.delay(i, i)
    assert _queue_length(tuned) == 50
    assert capture.flush(0.5) in (True, False)


def test_forked_child_publishes_through_its_own_connection(settings: AppSettings) -> None:
    tasks = make_app(settings)
    tasks.add.delay(1, 1)
    assert capture.flush(5.0)
    parent = state.current().emitter()  # type: ignore[union-attr]
    parent_client = parent._publisher._client.client_id()  # type: ignore[union-attr]
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: publish, report the connection it used, exit without atexit
        code = 1
        try:
            for i in range(3):
                tasks.add.delay(i, 100)
            capture.flush(5.0)
            child = state.current().emitter()  # type: ignore[union-attr]
            os.write(write_fd, str(child._publisher._client.client_id()).encode())  # type: ignore[union-attr]
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    child_client = int(os.read(read_fd, 100).decode())
    os.close(read_fd)
    assert status == 0
    assert child_client != parent_client
    events = _published(settings)
    by_pid = {e["src"]["pid"]: e for e in events}
    assert set(by_pid) == {os.getpid(), pid}
    child_events = [e for e in events if e["src"]["pid"] == pid]
    assert [e["src"]["seq"] for e in child_events] == [1, 2, 3]
    assert child_events[0]["src"]["inst"] != by_pid[os.getpid()]["src"]["inst"]


def test_exit_flush_delivers_the_last_events(settings: AppSettings) -> None:
    tuned = dataclasses.replace(settings, options={"flush_interval": 60})
    script = textwrap.dedent(
        """
        from tests.support.app import AppSettings, make_app
        tasks = make_app(AppSettings.from_env())
        for i in range(500):
            tasks.add.delay(i, i)
        """
    )
    env = dict(os.environ, STEMTRACE_TEST_APP=tuned.to_env(), PYTHONPATH=f"{ROOT / 'src'}:{ROOT}")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=ROOT, timeout=60)
    events = _events(tuned)
    assert len([e for e in events if e["type"] == "task.published"]) == 500
    assert events[-1]["type"] == "library.health"
