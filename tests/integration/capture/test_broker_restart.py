"""The library survives event-broker restarts: a real worker at 200 tasks/s loses no event.

The event broker is a ``redis-server`` of this test's own, on a free port (never the machine's
Redis, which others use), killed with SIGKILL and started again on the same port mid-run. It
keeps an append-only file fsynced on every write, so what it acknowledged survives the kill:
the broker's own durability is not what is tested here, the library's is. Celery's broker and
result backend stay on the machine's Redis, so tasks keep flowing while events cannot.

Zero loss means: every task has its four events (published by this process, received by the
worker's main process, started and succeeded in a pool child), and each library process's
seqs (the server's gap detection) run from 1 to the last with no hole.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.support import AppSettings, make_app, read_stream
from tests.support.worker import WorkerProcess

import stemtrace.capture.install as capture
from stemtrace.capture import state

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]

RATE = 200  # tasks per second
LIFE = ("task.published", "task.received", "task.started", "task.succeeded")
STREAM = "stemtrace.events"  # an explicit ``url`` gets no key prefix from the app's broker options


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own that can be killed and started again on its port."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no goodbye to the clients
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def _run(
    tasks: Any, seconds: float, outages: list[tuple[float, float]], broker: OwnRedis
) -> tuple[list[str], int]:
    """Send up to ``RATE`` tasks a second for ``seconds``; the broker is down during each
    (start, end). Returns the task ids and how many were sent while it was down."""
    ids: list[str] = []
    while_down = 0
    started = time.monotonic()
    pending = sorted(outages)
    down_until: float | None = None
    while (elapsed := time.monotonic() - started) < seconds:
        if down_until is None and pending and elapsed >= pending[0][0]:
            broker.kill()
            down_until = pending.pop(0)[1]
        elif down_until is not None and elapsed >= down_until:
            broker.start()
            down_until = None
        ids.append(tasks.add.delay(len(ids), 1).id)
        while_down += down_until is not None
        time.sleep(max(0.0, started + len(ids) / RATE - time.monotonic()))
    if down_until is not None:
        broker.start()
    return ids, while_down


def _lifecycles(broker: OwnRedis, key: str) -> tuple[dict[str, set[str]], dict[str, set[int]], list[Any]]:
    events = read_stream(broker.url, key)[0]
    by_task: dict[str, set[str]] = defaultdict(set)
    seqs: dict[str, set[int]] = defaultdict(set)
    health = []
    for e in events:
        seqs[e["src"]["inst"]].add(e["src"]["seq"])
        if "task" in e:
            by_task[e["task"]["id"]].add(e["type"])
        elif e["type"] == "library.health":
            health.append(e["data"])
    return by_task, seqs, health


@pytest.mark.parametrize(
    "outages",
    [
        pytest.param([(3.0, 8.0)], id="restart-5s"),
        pytest.param([(2.0, 3.0), (4.0, 5.0), (6.0, 7.0), (8.0, 9.0)], id="flapping-every-1s"),
    ],
)
def test_a_broker_restart_during_a_run_loses_no_event(
    settings: AppSettings, own_redis: OwnRedis, outages: list[tuple[float, float]]
) -> None:
    tuned = dataclasses.replace(settings, options={"url": own_redis.url})
    tasks = make_app(tuned)
    with WorkerProcess(tuned, pool="prefork", concurrency=2) as worker:
        ids, while_down = _run(tasks, 11.0, outages, own_redis)
        assert while_down > 0
        emitter = state.current().emitter()  # type: ignore[union-attr]
        assert capture.flush(30.0), (emitter.held_events, emitter.errors)
        assert emitter.overflow == 0 and emitter.errors >= 1  # it did see the broker go away

        deadline = time.monotonic() + 90
        while True:
            by_task, seqs, health = _lifecycles(own_redis, STREAM)
            done = sum(1 for i in ids if by_task.get(i, set()) >= set(LIFE))
            if done == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        incomplete = {i: sorted(by_task.get(i, ())) for i in ids if not by_task.get(i, set()) >= set(LIFE)}
        assert not incomplete, (len(incomplete), list(incomplete.items())[:5], worker.log()[-3000:])
    # Every library process's seqs, from 1 to its last, without a hole: nothing was dropped.
    holes = {inst: sorted(set(range(1, max(s) + 1)) - s)[:10] for inst, s in seqs.items() if len(s) != max(s)}
    assert not holes, holes
    assert len(seqs) >= 3  # this process, the worker's main process and at least one pool child
    assert all(h.get("drops", {}).get("buffer overflow", 0) == 0 for h in health)
