"""``stemtrace server --ingest-process separate``: ingest in a child process, supervised.

The server runs as users run it (a subprocess) on the real Redis and a real SQLite store. The
ingest loop must run in a child process (not the one answering HTTP), health must report its
progress across the process boundary, a child killed with SIGKILL must be restarted (health
counting the restart) and go on ingesting, and SIGTERM must stop both processes promptly.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from server_events import EventFactory
from server_harness import ServerProcess, cleanup_source, publish, wait_for

from stemtrace.transport import TransportConfig

pytestmark = pytest.mark.integration

EXIT_GUARD_S = 10.0  # generous against load; the goal is under 5 s


def _lives(n: int, prefix: str) -> list[dict[str, Any]]:
    f = EventFactory()
    return [e.to_dict() for i in range(n) for e in f.run(f"{prefix}-{i:04d}", "proj.work", i * 0.01)]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in task.read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _ingest_child(server: ServerProcess) -> int:
    assert server.proc is not None
    found = [p for p in _children(server.proc.pid) if "spawn_main" in _cmdline(p)]
    assert len(found) == 1, [(p, _cmdline(p)) for p in _children(server.proc.pid)]
    return found[0]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_ingest_runs_in_a_supervised_child_process(redis_url: str, unique_name: str, tmp_path: Path) -> None:
    source = TransportConfig(url=redis_url, name=unique_name)
    server = ServerProcess(
        "--broker",
        redis_url,
        "--events-name",
        unique_name,
        "--store",
        f"sqlite:///{tmp_path / 'sep.db'}",
        "--ingest-process",
        "separate",
    ).start()
    try:
        first = _lives(50, "a")
        publish(source, first)
        wait_for(lambda: server.get("/api/health")["ingest"]["events"] == len(first), timeout=60)
        health = server.get("/api/health")
        assert health["status"] == "ok", health
        assert health["ingest"]["status"] == "ok"
        assert health["ingest"]["stored"] == len(first)
        assert server.get("/api/tasks/a-0049")["state"] == "SUCCESS"
        child = _ingest_child(server)
        assert server.proc is not None and child != server.proc.pid

        # A child that dies is started again; health says so and counts on from where it was.
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: server.get("/api/health")["ingest"]["restarts"] >= 1, timeout=30)
        degraded = server.get("/api/health")
        assert degraded["status"] == "degraded"
        assert any("ingest process" in r for r in degraded["reasons"]), degraded["reasons"]
        second = _lives(20, "b")
        publish(source, second)
        wait_for(
            lambda: server.get("/api/health")["ingest"]["events"] >= len(first) + len(second), timeout=60
        )
        assert server.get("/api/tasks/b-0019")["state"] == "SUCCESS"
        assert _ingest_child(server) != child

        # SIGTERM stops the server and its ingest process promptly.
        new_child = _ingest_child(server)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(EXIT_GUARD_S)
        took = time.monotonic() - started
        wait_for(lambda: not Path(f"/proc/{new_child}").exists() or _zombie(new_child), timeout=5)
    finally:
        server.stop()
        cleanup_source(source)
    assert server.proc.returncode in {0, -signal.SIGTERM}
    print(f"server and its ingest process exited {took:.2f} s after SIGTERM")


def test_same_process_mode_has_no_child(redis_url: str, unique_name: str, tmp_path: Path) -> None:
    source = TransportConfig(url=redis_url, name=unique_name)
    server = ServerProcess(
        "--broker",
        redis_url,
        "--events-name",
        unique_name,
        "--store",
        f"sqlite:///{tmp_path / 'same.db'}",
        "--ingest-process",
        "same",
    ).start()
    try:
        events = _lives(10, "c")
        publish(source, events)
        wait_for(lambda: server.get("/api/health")["ingest"]["events"] == len(events), timeout=60)
        assert server.proc is not None
        assert not [p for p in _children(server.proc.pid) if "spawn_main" in _cmdline(p)]
    finally:
        server.stop()
        cleanup_source(source)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
