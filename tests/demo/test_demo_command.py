"""``stemtrace demo`` end to end: a subprocess serves the UI and API, fills them with every kind of
workflow the demo promises, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from stemtrace.demo.cli import demo

CLI = "from stemtrace.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as resp:
            return json.load(resp)

    def tasks(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/api/tasks?name={name}&limit=200")["items"]
        return items


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Api]]:
    port = _free_port()
    log = tmp_path_factory.mktemp("demo") / "out.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("STEMTRACE_")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "demo", "--no-open",
             "--port", str(port), "--rate", "30"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    api = Api(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while f"http://127.0.0.1:{port}/" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc, api
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, KeyError, ValueError, StopIteration):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the demo never showed {what}")


def _workflows_of(api: Api, name: str) -> Iterator[dict[str, Any]]:
    """Each workflow holding a finished ``name``: a task name such as ``demo.resize_image`` runs in
    several scenarios (a group, a chord, a nested canvas), so the newest one alone may be of any kind."""
    seen: set[str] = set()
    for task in api.tasks(name):
        if task["state"] == "SUCCESS" and task["workflow_id"] not in seen:
            seen.add(task["workflow_id"])
            graph: dict[str, Any] = api.get(f"/api/workflows/{task['workflow_id']}")
            yield graph


def test_the_demo_shows_every_kind_of_workflow_then_stops_on_ctrl_c(
    running_demo: tuple[subprocess.Popen[str], Api],
) -> None:
    proc, api = running_demo
    with urllib.request.urlopen(api.base + "/", timeout=5) as resp:
        assert resp.status == 200
        assert "<html" in resp.read().decode().lower()

    # a chain: its three steps succeed inside one workflow
    def chain_done() -> bool:
        last = next(t for t in api.tasks("demo.store_orders") if t["state"] == "SUCCESS")
        names = {t["name"] for t in api.get(f"/api/tasks?workflow={last['workflow_id']}&limit=50")["items"]}
        return {"demo.fetch_orders", "demo.enrich_orders"} <= names

    _eventually(chain_done, "a finished chain")

    # a group, and a chord with its callback
    def has_group(task_name: str, kind: str) -> bool:
        return any(
            g["kind"] == kind and (kind == "group" or g["callback"])
            for graph in _workflows_of(api, task_name)
            for g in graph["groups"]
        )

    _eventually(lambda: has_group("demo.resize_image", "group"), "a group")
    _eventually(lambda: has_group("demo.summarize", "chord"), "a chord with its callback")
    # a retry that recovers and one that gives up
    _eventually(
        lambda: any(t["state"] == "SUCCESS" and t["retries"] >= 2 for t in api.tasks("demo.charge_card")),
        "a recovered retry",
    )
    _eventually(
        lambda: any(t["state"] == "FAILURE" and t["retries"] >= 2 for t in api.tasks("demo.sync_inventory")),
        "a retry that gave up",
    )

    # a failure, a revoked task, children spawned from a task body, the fan-out
    def has_state(task_name: str, state: str) -> bool:
        return any(t["state"] == state for t in api.tasks(task_name))

    _eventually(lambda: has_state("demo.capture_payment", "FAILURE"), "a failure")
    _eventually(lambda: has_state("demo.cleanup_carts", "REVOKED"), "a revoked task")

    def spawned() -> bool:
        parents = {t["id"] for t in api.tasks("demo.import_catalog")}
        return any(t["parent_id"] in parents for t in api.tasks("demo.import_page"))

    _eventually(spawned, "spawned children")
    _eventually(lambda: len(api.tasks("demo.score_item")) >= 200, "the 500-task fan-out")
    health = api.get("/api/health")
    assert health["ingest"]["events"] > 0

    # the Workers page: the demo's own worker, online, with a heartbeat and its running tasks
    def worker_online() -> bool:
        workers = {w["hostname"]: w for w in api.get("/api/workers")["items"]}
        demo_worker = workers["demo@stemtrace"]
        online = bool(demo_worker["online"] and demo_worker["last_heartbeat"])
        return online and demo_worker["pool"] == "threads"

    _eventually(worker_online, "its worker online with a heartbeat")

    def running_task() -> bool:
        return any(w["active_tasks"] for w in api.get("/api/workers")["items"])

    _eventually(running_task, "a running task on its worker")

    # Ctrl-C while a browser tab holds the live stream open still stops the demo promptly
    stream = urllib.request.urlopen(api.base + "/api/stream", timeout=30)
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        stopped_in = time.monotonic() - started
    finally:
        stream.close()
    assert code == 0, proc.stdout
    assert stopped_in < 8, f"the demo took {stopped_in:.1f} s to stop"  # a guard; the target is 2 s
    with pytest.raises(OSError):
        urllib.request.urlopen(api.base + "/api/health", timeout=2)


def test_options_are_validated() -> None:
    runner = CliRunner()
    result = runner.invoke(demo, ["--help"])
    assert result.exit_code == 0
    for option in ("--port", "--rate", "--no-open", "--duration", "--host", "--store"):
        assert option in result.output
    assert runner.invoke(demo, ["--rate", "0"]).exit_code == 2
    assert runner.invoke(demo, ["--port", "70000"]).exit_code == 2


def test_a_busy_port_is_reported_not_hidden() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-c", CLI, "demo", "--no-open", "--port", str(port)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert f"could not start on 127.0.0.1:{port}" in proc.stdout
