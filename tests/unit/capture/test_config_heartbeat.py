"""A worker announces its own ``heartbeat_interval``; the server's setting is only a fallback.

The library and the server once read one variable, ``STEMTRACE_HEARTBEAT_INTERVAL``, for two
things. Now the library's value travels in its heartbeats, and the server's
``expected_heartbeat_interval`` applies only to workers that announce none.
"""

from __future__ import annotations

from stemtrace.capture import state as _state
from stemtrace.capture import worker
from stemtrace.capture.config import load
from stemtrace.core.events import WORKER_HEARTBEAT, decode_event
from stemtrace.core.workers import MISSED_HEARTBEATS, fold_worker
from stemtrace.transport import TransportConfig


def test_a_heartbeat_carries_the_workers_interval_and_the_server_uses_it() -> None:
    config = load({}, {"STEMTRACE_HEARTBEAT_INTERVAL": "5s"})
    st = _state.State(config, lambda: TransportConfig(url="memory://"), app=None)
    (beat,) = worker._heartbeat(st, "w1@host")
    assert beat["type"] == WORKER_HEARTBEAT and beat["data"]["interval"] == 5.0
    src = {"host": "host", "pid": 1, "inst": "i1", "seq": 1, "proc": "main", "node": "w1@host"}
    event = decode_event({**beat, "v": 1, "src": src})
    record = fold_worker(None, event)
    assert record is not None and record.interval == 5.0
    server_default = 30.0  # expected_heartbeat_interval
    silent = beat["ts"] + MISSED_HEARTBEATS * 5.0 + 1
    assert not record.is_online(silent, server_default)  # 3 x 5 s, not 3 x 30 s
    assert record.is_online(beat["ts"] + MISSED_HEARTBEATS * 5.0 - 1, server_default)
