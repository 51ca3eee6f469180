"""Every scenario of the demo does on the in-memory broker what the demo promises.

Runs the scenarios on a real in-process worker (threads pool, ``memory://`` broker,
``cache+memory://`` backend), exactly as ``stemtrace demo`` does, and records Celery's own
signals, so it checks the workload independently of stemtrace's capture and server.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker

from stemtrace.demo import tasks, workload


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.postrun: list[tuple[str, str | None, str]] = []  # (task name, state, task id)
        self.revoked: list[tuple[str, bool]] = []  # (task name, expired)
        self.parents: dict[str, str | None] = {}

    def on_postrun(self, task: Any = None, task_id: str = "", state: str | None = None, **_: Any) -> None:
        with self.lock:
            self.postrun.append((task.name, state, task_id))
            self.parents[task_id] = task.request.parent_id

    def on_revoked(self, sender: Any = None, expired: bool = False, **_: Any) -> None:
        with self.lock:
            self.revoked.append((sender.name, bool(expired)))

    def states(self, name: str) -> list[str | None]:
        with self.lock:
            return [s for n, s, _ in self.postrun if n == name]


@pytest.fixture(scope="module")
def demo_worker() -> Iterator[tuple[Any, Recorder]]:
    recorder = Recorder()
    signals.task_postrun.connect(recorder.on_postrun, weak=False)
    signals.task_revoked.connect(recorder.on_revoked, weak=False)
    tasks.stopping.clear()
    app = tasks.create_app()
    try:
        options: dict[str, Any] = {"perform_ping_check": False, "loglevel": "CRITICAL"}
        with start_worker(app, pool="threads", concurrency=4, shutdown_timeout=20, **options):
            yield app, recorder
            tasks.stopping.set()
    finally:
        signals.task_postrun.disconnect(recorder.on_postrun)
        signals.task_revoked.disconnect(recorder.on_revoked)
        tasks.stopping.clear()


def _wait(check: Any, timeout: float = 60.0) -> None:  # real workers on a shared host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the workload")


def test_every_scenario_behaves_as_described(demo_worker: tuple[Any, Recorder]) -> None:
    app, rec = demo_worker
    rng = random.Random(7)
    kinds = [scenario(app, rng) for scenario in (*workload.LIGHT, workload.fan_out)]
    assert len(set(kinds)) == len(kinds) == len(workload.LIGHT) + 1

    # chain, group, chord and the nested canvas all run to the end
    _wait(lambda: rec.states("demo.store_orders").count("SUCCESS") >= 2)  # chain + nested canvas tail
    _wait(lambda: rec.states("demo.summarize").count("SUCCESS") >= 4)  # chord, nested x2, fan-out
    assert rec.states("demo.resize_image").count("SUCCESS") >= 4 + 5 + 3
    # 500 header tasks of the fan-out
    assert rec.states("demo.score_item").count("SUCCESS") == 500
    # a retry that recovers: two RETRY then SUCCESS, then the chain goes on
    _wait(lambda: "SUCCESS" in rec.states("demo.charge_card"))
    _wait(lambda: "SUCCESS" in rec.states("demo.send_receipt"))
    assert rec.states("demo.charge_card") == ["RETRY", "RETRY", "SUCCESS"]
    # a retry that gives up: max_retries=2, so three runs and a final failure
    _wait(lambda: "FAILURE" in rec.states("demo.sync_inventory"))
    assert rec.states("demo.sync_inventory") == ["RETRY", "RETRY", "FAILURE"]
    # a failure in the middle of a chain: the step after it never runs
    assert rec.states("demo.capture_payment") == ["FAILURE"]
    assert rec.states("demo.send_receipt") == ["SUCCESS"]  # only the retry chain's receipt
    # a chord whose header has one failure: three parcels ship, one fails, no callback for it
    _wait(lambda: len(rec.states("demo.ship_parcel")) == 4)
    assert sorted(rec.states("demo.ship_parcel"), key=str) == ["FAILURE", "SUCCESS", "SUCCESS", "SUCCESS"]
    time.sleep(0.5)  # time enough for a callback to start, were one coming
    assert rec.states("demo.summarize").count("SUCCESS") == 4  # chord, nested x2, fan-out; not the failed one
    # a revoke through remote control, and an expiry
    _wait(lambda: len(rec.revoked) >= 2, timeout=10)
    assert sorted(rec.revoked) == [("demo.cleanup_carts", False), ("demo.cleanup_carts", True)]
    # children spawned from inside a task body point at it as their parent
    _wait(lambda: len(rec.states("demo.import_page")) >= 3)
    with rec.lock:
        catalog = [tid for n, _, tid in rec.postrun if n == "demo.import_catalog"]
        pages = [tid for n, _, tid in rec.postrun if n == "demo.import_page"]
        assert len(catalog) == 1
        assert all(rec.parents[p] == catalog[0] for p in pages)


def test_the_slow_task_wakes_up_when_the_demo_stops(demo_worker: tuple[Any, Recorder]) -> None:
    app, rec = demo_worker
    workload.slow_report(app, random.Random(1))
    _wait(lambda: True)
    started = time.monotonic()
    time.sleep(0.3)
    tasks.stopping.set()
    try:
        _wait(lambda: rec.states("demo.monthly_report") == ["SUCCESS"], timeout=5)
    finally:
        tasks.stopping.clear()
    assert time.monotonic() - started < 5  # the task sleeps 8 s unless woken


def test_workload_paces_light_and_heavy_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    def fake(name: str) -> workload.Scenario:
        def scenario(app: Any, rng: random.Random) -> str:
            sent.append(name)
            return name

        scenario.__name__ = name
        return scenario

    monkeypatch.setattr(workload, "LIGHT", tuple(fake(f"light{i}") for i in range(3)))
    monkeypatch.setattr(workload, "HEAVY", (fake("fan"), fake("slow")))
    monkeypatch.setattr(workload, "HEAVY_EVERY", 4)
    w = workload.Workload(app=None, rate=6000, seed=3)
    w.start()
    deadline = time.monotonic() + 5
    while len(sent) < 5 + 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop()
    assert sent[:5] == ["light0", "light1", "light2", "fan", "slow"]  # the first round: one of each
    after = sent[5:17]
    assert [after[3], after[7], after[11]] == ["fan", "slow", "fan"]  # heavy ones every 4th
    assert all(s.startswith("light") for i, s in enumerate(after) if i % 4 != 3)
    assert sum(w.sent.values()) == len(sent)


def test_a_failing_scenario_does_not_stop_the_workload() -> None:
    def broken(app: Any, rng: random.Random) -> str:
        raise RuntimeError("broker gone")

    w = workload.Workload(app=None, rate=60)
    w._send(broken)
    assert w.sent == {}


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        workload.Workload(app=None, rate=0)
